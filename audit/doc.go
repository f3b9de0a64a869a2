// Package audit is agentguard's tamper-evident audit log: records of every
// decision and result, hash-chained in JSON lines, written durably before
// the tool runs, redacted before they are hashed, signed at checkpoints,
// and verifiable by anyone from the format alone.
//
// # Writing
//
// Open a Log and Append records; Append assigns each record its seq, time,
// log ID and prev, and writes it as one line:
//
//	l, err := audit.Open("audit.jsonl", audit.Options{SignerKey: skey})
//	...
//	err = l.Append(ctx, &audit.Record{Kind: audit.KindDecision, Tool: "send_email", Args: args, Decision: "allow"})
//	...
//	err = l.Close() // writes a final checkpoint
//
// The root package's WithAudit and WithAuditFile options record every
// event of a Guard this way; most programs use them rather than Append.
// One Log at a time may write a file: on Unix an advisory lock makes a
// second Open fail with ErrLocked.
//
// # Durability
//
// On Linux a Log that syncs less often than every record (SyncNever,
// SyncInterval) copies each record into a shared mapping of its file
// (MAP_SHARED), with no system call per record: the bytes are in the
// kernel's page cache once Append returns, where a kill of the process
// cannot lose them, exactly as after write(2). The file is grown ahead in
// chunks reserved with fallocate, so that a full disk is an error (each
// chunk prepared on a goroutine of the Log's own while the records fill
// the one before, off the callers' path), and ends with a zero tail of reserved space while the Log is open (see
// FORMAT.md); Close cuts it. A SyncEach Log, Options.NoMap,
// other platforms, and a failed reservation write each record with
// write(2).
//
// Under the default sync policy, SyncEach, Append returns only after the
// line is on disk (fdatasync); concurrent appends share one sync (group
// commit), and the records of a sync's batch go out in one write(2), by
// the append that leads it, just before the sync. SyncInterval syncs in the background and SyncNever leaves it to
// the operating system. [Log.AppendLater] takes a record that nothing
// waits on (the Guard's call results) without waiting for a sync: through
// the mapping it is in the file at once; written with write(2), it goes
// out in the same write as the next Append, or within about 10 ms, so a
// crash of the process can lose such records of its last 10 ms, never one
// appended with Append. A failed write or fsync latches the log: that
// Append and every later one return an error wrapping ErrUnavailable, and
// the Guard denies every call, until the log is reopened. A failed write
// is cut back, so no partial record stays visible. Open recovers a log
// after a crash: a zero tail is cut off, a torn last line (no newline) is
// cut off and kept in a .broken file (see Log.Recovered); any other damage is a *VerifyError
// naming the seq and byte offset, and nothing is cut. Options.MaxSize and
// Options.MaxAge rotate the file; the chain continues in the next file
// (see Segments).
//
// # Shared stores
//
// A fleet of processes records into one log kept in a [Store] (package
// postgres keeps one in PostgreSQL): [OpenStore] returns a [StoreLog]
// that writes the same records, redaction, chain and checkpoints as
// [Log], each append taking the store's lock, reading its head and
// writing the next line, so writers in several processes extend one
// chain. A failed append leaves nothing and does not latch; the next
// append tries again. [Export] writes the store's lines as a file that
// [Verify] (and `agentguard audit verify`) checks. [MemStore] is the
// in-memory store and the reference; package storetest checks a store
// against the contract.
//
// # Format
//
// Each line is one record: a JSON object in a canonical form, with log
// (the log's ID), kind, time (RFC 3339, UTC, nanoseconds), the call's
// fields when they apply, seq (from 0, no gaps), and prev: the lowercase
// hex SHA-256 of the previous line's bytes without its newline, or 64
// zeros for seq 0. FORMAT.md, next to this file, specifies the canonical
// form key by key, with worked examples, precisely enough to write a
// verifier in another language. That is version 3 of the format; readers
// also accept lines of versions 1 and 2, which had seq and time first,
// and logs that mix them. Seq is near the end so that the Log can encode
// and hash everything before it outside its lock; the keys that a tool's
// calls by one principal share (the head: principal, env, tool, labels,
// policy) come first and time after them, so that the Log hashes a head
// once and starts each line that has it from the hash's state after it.
//
// # Checkpoints
//
// A checkpoint is a statement of the log's ID, size and head hash (the
// hash of its last line) in the signed-note format of
// golang.org/x/mod/sumdb/note, signed with an Ed25519 key from
// GenerateKey. The log writes checkpoints as records of kind checkpoint,
// every Options.CheckpointEvery records, every Options.CheckpointInterval
// and at Close, and hands each to Options.Sinks (FileSink, ZapSink, or
// any Sink). A checkpoint kept where the log's writer cannot change it
// makes truncation and rewriting detectable; without one, removing whole
// records from the end of a log cannot be detected.
//
// # Redaction
//
// Before a record is hashed and written, its arguments and its error,
// reason and note text are redacted (see Redaction and Redactor); each
// removed value becomes "[REDACTED:h]", h a short keyed hash so equal
// values still correlate. Removed are:
//
//   - every value but null and booleans under a secret key, at any depth
//     of maps and arrays. Keys are split into words at punctuation and at
//     camelCase and PascalCase boundaries and compared without regard to
//     case (see Redactor.SecretKey): dbPassword, AWS_SECRET_ACCESS_KEY,
//     X-Api-Key and clientSecret are secret; max_tokens and token_count
//     are not;
//   - in strings: the values of name=value and name: value pairs whose
//     name is a secret key, URL passwords (scheme://user:password@host),
//     and text matching DefaultPatterns (credential shapes: AWS, GitHub,
//     Slack, Stripe and Google keys, JWTs, PEM private keys, bearer and
//     basic authorization values) or Redaction.Patterns;
//   - in a string that holds a JSON object or array: the same, on its
//     decoded value, which is then encoded again (compact, keys sorted).
//
// Secrets found in the arguments are also removed from the error text;
// long strings are cut, with their length recorded. Redactor.Value and
// Redactor.Clean serve callers that redact values of their own.
//
// A program that appends many records of one tool can give them a Plan
// (Redactor.Plan, Record.Plan): the tool's env, tool and labels encoded
// once, its argument keys sorted with whether each is secret. Redaction
// then only checks each value with a quick scan, and the encoder splices
// what it has; a record that differs from its plan anywhere takes the
// general path for that part, so a plan never changes a line. The root
// package's recorder keeps one per tool. A caller that holds the
// arguments unboxed (a tool's struct) can give them as an ArgReader
// (Record.Reader) instead of a map: with a plan that knows the keys and
// values that need no redaction, the record is written without the map;
// otherwise the map is asked for and redacted as Args would be. The line
// is the same either way.
//
// # Verifying
//
// Verify streams a log's files in constant memory and returns a Report
// (records, head hash, checkpoints verified) or a *VerifyError naming the
// first bad record by seq, file and line. A rotated log is verified by
// passing all its files, Segments(path). With VerifyOptions.Key it checks
// the checkpoints' signatures, requires at least one, and reports how
// many records at the end none covers (RequireCovered fails on them);
// with VerifyOptions.Checkpoint it checks the log against a checkpoint
// kept elsewhere. VerifyOptions says what each guarantees: without a key,
// a passing Verify proves only that the records chain, which anyone who
// can write the file can redo after an edit. The command
// `agentguard audit verify` is its command-line form. It checks each line
// in one pass over its bytes and hashes and checks blocks of lines on
// several goroutines: with two CPUs, at more than half the speed of
// SHA-256 alone.
//
// # Replay
//
// Replay re-decides the recorded decisions under another policy and
// reports those that would change, so a policy change can be tried
// against real history before it is enforced (`agentguard audit replay`).
//
// # Operational logging
//
// The audit log is not the operational log. Options.Logger receives
// operational messages (recovery, failures) through zap; Options.Mirror,
// when set, also receives a copy of every record. Neither replaces the
// log.
package audit
