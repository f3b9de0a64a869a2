package postgres

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// cutProxy forwards loopback TCP connections to the database, and can cut
// them all and refuse new ones: a database that became unreachable,
// without disturbing the server that other tests share.
type cutProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	hung  chan struct{} // closed when not hung; nil when never hung
	conns []net.Conn
}

// newCutProxy starts a proxy to dsn's host and returns it with a DSN that
// goes through it.
func newCutProxy(t testing.TB, dsn string) (*cutProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: u.Host}
	t.Cleanup(func() { ln.Close(); p.Cut() })
	go p.serve()
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *cutProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { p.copy(s, c); s.Close() }()
		go func() { p.copy(c, s); c.Close() }()
	}
}

// Cut closes every connection and refuses new ones until Restore.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore accepts connections again.
func (p *cutProxy) Restore() {
	p.mu.Lock()
	p.cut = false
	p.mu.Unlock()
}

// copy forwards src to dst, holding every read while the proxy is hung.
func (p *cutProxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			h := p.hung
			p.mu.Unlock()
			if h != nil {
				<-h
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Hang stops forwarding: connections stay open and nothing answers, as
// when a server or the network between stalls. Unhang resumes.
func (p *cutProxy) Hang() {
	p.mu.Lock()
	p.hung = make(chan struct{})
	p.mu.Unlock()
}

// Unhang forwards again what was held.
func (p *cutProxy) Unhang() {
	p.mu.Lock()
	if p.hung != nil {
		close(p.hung)
		p.hung = nil
	}
	p.mu.Unlock()
}
