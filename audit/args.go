package audit

// ArgReader gives a record's arguments without a map, for a caller that
// holds them unboxed (the root package reads a tool's struct where it
// is). A Record whose Args is nil and whose Reader is set is redacted and
// written exactly as with Args set to Reader.Args(): the same line, the
// same secrets scrubbed from its texts. With the record's Plan, when the
// plan knows every argument's key and no argument needs redaction, the
// map is never asked for.
//
// An ArgReader serves one record while it is appended; it must give the
// same arguments every time it is asked.
type ArgReader interface {
	// Len returns the number of arguments.
	Len() int
	// Arg returns the argument named name as Args would hold it, and
	// whether there is one. It must not allocate: it is asked for each of
	// the plan's keys. The value may refer to the reader's own memory;
	// the log does not keep it once the record is appended.
	Arg(name string) (any, bool)
	// Args returns the arguments as a map, as Record.Args would hold
	// them. It may be called more than once for one record; the caller
	// does not change the map.
	Args() map[string]any
}

// mapArgs is a record's map of arguments as an ArgReader, for the code
// that reads either.
type mapArgs map[string]any

func (m mapArgs) Len() int                    { return len(m) }
func (m mapArgs) Arg(name string) (any, bool) { v, ok := m[name]; return v, ok }
func (m mapArgs) Args() map[string]any        { return m }

// readerArgs returns the map of rd, never nil: a record whose Args is
// set is read from Args alone.
func readerArgs(rd ArgReader) map[string]any {
	if m := rd.Args(); m != nil {
		return m
	}
	return map[string]any{}
}
