package nemesis

import (
	"net"
	"sync"
)

// Proxy forwards TCP connections from a loopback port to one target and
// can cut the link. A cut behaves like a network partition, not like a
// refused connection: bytes already sent stay queued (TCP keeps
// retransmitting), new connections are accepted but not forwarded, and
// both flow again when the link is healed. Clients notice a partition only
// through their own timeouts, as they would on a real network.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	open   chan struct{} // closed while the link is up
	conns  map[net.Conn]struct{}
	closed bool
}

// NewProxy listens on a free 127.0.0.1 port and forwards to target.
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, open: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	close(p.open)
	go p.serve()
	return p, nil
}

// Addr is the proxy's listen address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut stops forwarding in both directions until Heal.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		p.open = make(chan struct{})
	default:
	}
}

// Heal resumes forwarding.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
	default:
		close(p.open)
	}
}

// IsCut reports whether the link is cut.
func (p *Proxy) IsCut() bool {
	select {
	case <-p.gate():
		return false
	default:
		return true
	}
}

func (p *Proxy) gate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.open
}

// wait blocks until the link is up (Close heals it, releasing every
// waiter).
func (p *Proxy) wait() { <-p.gate() }

// Close stops the proxy and drops every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	p.ln.Close()
	for c := range conns {
		c.Close()
	}
	p.Heal() // release goroutines waiting at the gate
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		go p.handle(c)
	}
}

func (p *Proxy) handle(client net.Conn) {
	defer p.untrack(client)
	// A connection attempt during a partition hangs until the link heals;
	// the client gives up on its own timeout.
	p.wait()
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(upstream, client); upstream.Close() }()
	go func() { defer wg.Done(); p.pipe(client, upstream); client.Close() }()
	wg.Wait()
}

// pipe copies src to dst, holding every chunk while the link is cut. Data
// a client sent before it gave up is still delivered after the heal, as
// TCP retransmission would deliver it: late messages are part of the test.
func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.wait()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			// The end of the stream (FIN or reset) crosses the link only
			// when it is up, like any other segment.
			p.wait()
			return
		}
	}
}
