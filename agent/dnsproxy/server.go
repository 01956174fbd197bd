package dnsproxy

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/onramp-mesh/onramp/agent/dnsproxy/udpbatch"
)

const (
	udpBatch   = 32   // datagrams per recvmmsg/sendmmsg
	udpInSize  = 4096 // largest query read
	udpOutSize = 4096 // initial answer buffer per datagram
)

// finalize adds the OPT record when the client sent one and truncates to
// what the client can take: its advertised UDP size (at least 512, at most
// maxUDP), or 65535 over TCP. A truncated answer keeps the header and
// question and has TC set.
func finalize(r *Request, resp []byte, maxUDP int) []byte {
	limit := 65535
	if !r.TCP {
		limit = 512
		if r.EDNS {
			limit = min(max(int(r.UDPSize), 512), maxUDP)
		}
	}
	size := len(resp)
	if r.EDNS {
		size += optLen
	}
	if size > limit && len(resp) >= r.QEnd && len(resp) >= headerLen {
		resp = resp[:max(r.QEnd, headerLen)]
		resp[2] |= flagTC >> 8
		for i := 6; i < headerLen; i++ {
			resp[i] = 0
		}
	}
	if r.EDNS && len(resp) >= headerLen {
		resp = appendOPT(resp, maxUDP, r.DO)
	}
	return resp
}

// admit parses a datagram into r and answers it at once when it is
// malformed or from a client that may not query. It returns false when r
// must not go down the chain.
func (p *Proxy) admit(msg []byte, r *Request, src netip.Addr) bool {
	p.metrics.requests.inc()
	r.QEnd = 0
	res, _ := parseQuery(msg, r)
	switch res {
	case parseDrop:
		p.metrics.formerr.inc()
		return false
	case parseFormErr, parseNotImp:
		p.metrics.formerr.inc()
		r.QEnd, r.EDNS = 0, false
		rc := rcodeFormErr
		if res == parseNotImp {
			rc = rcodeNotImp
		}
		r.Reply(appendHeaderOnly(r.Buf[:0], r, rc))
		return false
	}
	if !allowed(src) {
		p.metrics.refused.inc()
		r.Reply(appendHeaderOnly(r.Buf[:0], r, rcodeRefused))
		return false
	}
	return true
}

// udpSlot answers one datagram of a batch in place.
type udpSlot struct {
	p *Proxy
	b *udpbatch.Batch
	i int
	c *net.UDPConn
}

func (s *udpSlot) reply(r *Request, resp []byte) {
	if unsafe.SliceData(resp) != unsafe.SliceData(r.Buf) {
		resp = append(r.Buf[:0], resp...)
	}
	s.b.Out[s.i] = finalize(r, resp, s.p.cfg.UDPSize)
}

func (s *udpSlot) detach(r *Request) responder {
	return &udpLater{p: s.p, c: s.c, to: r.Src}
}

// udpLater answers a datagram after its batch was written.
type udpLater struct {
	p  *Proxy
	c  *net.UDPConn
	to netip.AddrPort
}

func (u *udpLater) reply(r *Request, resp []byte) {
	u.c.WriteToUDPAddrPort(finalize(r, resp, u.p.cfg.UDPSize), u.to)
}

func (u *udpLater) detach(*Request) responder { return u }

// retry paces a loop whose read or accept failed: it logs and waits,
// from 5 ms doubling to 1 s while the failures go on.
type retry struct{ delay time.Duration }

// wait logs err and sleeps; it reports false when the proxy was closed,
// and the loop must end.
func (rt *retry) wait(p *Proxy, what string, addr net.Addr, err error) bool {
	if p.isClosed() {
		return false
	}
	rt.delay = min(max(2*rt.delay, 5*time.Millisecond), time.Second)
	p.log.Warn(what+" failed; retrying", "addr", addr.String(), "error", err, "in", rt.delay.String())
	select {
	case <-p.done:
		return false
	case <-time.After(rt.delay):
		return true
	}
}

func (rt *retry) ok() { rt.delay = 0 }

// serveUDP is the UDP read loop: a batch in, every answer that is ready at
// once out, in one system call each.
func (p *Proxy) serveUDP(pc net.PacketConn) {
	c, ok := pc.(*net.UDPConn)
	if !ok {
		p.servePacketConn(pc)
		return
	}
	b, err := udpbatch.New(c, udpBatch, udpInSize)
	if err != nil {
		p.log.Error("cannot batch UDP; serving one datagram at a time", "addr", pc.LocalAddr().String(), "error", err)
		p.servePacketConn(pc)
		return
	}
	reqs := make([]Request, udpBatch)
	bufs := make([][]byte, udpBatch)
	for i := range reqs {
		reqs[i].w = &udpSlot{p: p, b: b, i: i, c: c}
		bufs[i] = make([]byte, 0, udpOutSize)
	}
	var rt retry
	for {
		n, err := b.Read()
		if err != nil {
			if udpbatch.ErrClosed(err) || !rt.wait(p, "UDP read", pc.LocalAddr(), err) {
				return
			}
			continue
		}
		rt.ok()
		now := p.now()
		for i := range n {
			r := &reqs[i]
			r.Buf = bufs[i][:0]
			b.Out[i] = b.Out[i][:0]
			r.TCP = false
			if !p.admit(b.In[i], r, b.SourceIP(i)) {
				continue
			}
			r.Src = b.Addr(i)
			r.Now = now
			p.chain(r)
			if cap(b.Out[i]) > cap(bufs[i]) && cap(b.Out[i]) <= 65535 {
				bufs[i] = b.Out[i][:0]
			}
		}
		if err := b.Write(n); err != nil && !p.isClosed() {
			p.log.Debug("UDP write failed", "error", err)
		}
	}
}

// servePacketConn serves a packet socket that is not a *net.UDPConn, one
// datagram at a time.
func (p *Proxy) servePacketConn(pc net.PacketConn) {
	in := make([]byte, udpInSize)
	var rt retry
	for {
		n, addr, err := pc.ReadFrom(in)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !rt.wait(p, "UDP read", pc.LocalAddr(), err) {
				return
			}
			continue
		}
		rt.ok()
		var src netip.AddrPort
		if ua, ok := addr.(*net.UDPAddr); ok {
			src = ua.AddrPort()
		}
		r := &Request{Buf: make([]byte, 0, udpOutSize), Src: src, Now: p.now()}
		r.w = &packetLater{p: p, pc: pc, to: addr}
		if !p.admit(in[:n], r, src.Addr()) {
			continue
		}
		p.chain(r)
	}
}

type packetLater struct {
	p  *Proxy
	pc net.PacketConn
	to net.Addr
}

func (u *packetLater) reply(r *Request, resp []byte) {
	u.pc.WriteTo(finalize(r, resp, u.p.cfg.UDPSize), u.to)
}

func (u *packetLater) detach(r *Request) responder { return u }

func (p *Proxy) isClosed() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// TCP limits: idle connections close, at most maxTCPConns are served, and
// at most tcpQueue answers wait to be written on one.
const (
	tcpIdle     = 10 * time.Second
	maxTCPConns = 256
	tcpQueue    = 64
)

// serveTCP accepts connections and serves each from two goroutines, a
// reader and a writer, started with run so that Serve waits for them.
func (p *Proxy) serveTCP(l net.Listener, run func(func())) {
	sem := make(chan struct{}, maxTCPConns)
	var rt retry
	for {
		c, err := l.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || !rt.wait(p, "TCP accept", l.Addr(), err) {
				return
			}
			continue
		}
		rt.ok()
		select {
		case sem <- struct{}{}:
		default:
			p.log.Debug("too many TCP connections; closing a new one", "limit", maxTCPConns, "client", c.RemoteAddr().String())
			c.Close()
			continue
		}
		t := &tcpConn{p: p, c: c, out: make(chan []byte, tcpQueue), done: make(chan struct{})}
		if !p.track(t) {
			c.Close()
			return
		}
		run(t.writeLoop)
		run(func() {
			defer func() { <-sem }()
			t.readLoop()
			p.untrack(t)
		})
	}
}

func (p *Proxy) track(t *tcpConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.tcpConns[t] = struct{}{}
	return true
}

func (p *Proxy) untrack(t *tcpConn) {
	p.mu.Lock()
	delete(p.tcpConns, t)
	p.mu.Unlock()
}

// tcpConn is one TCP client. Its reader runs the chain; answers, which for
// pipelined queries may come in any order, are queued to its writer, so
// no goroutine that answers ever waits on a slow client while holding
// anything.
type tcpConn struct {
	p    *Proxy
	c    net.Conn
	out  chan []byte
	done chan struct{}
	once sync.Once
}

// close ends the connection; both loops return.
func (t *tcpConn) close() {
	t.once.Do(func() {
		close(t.done)
		t.c.Close()
	})
}

func frame(r *Request, resp []byte, maxUDP int) []byte {
	out := finalize(r, resp, maxUDP)
	f := make([]byte, 2, 2+len(out))
	binary.BigEndian.PutUint16(f, uint16(len(out)))
	return append(f, out...)
}

// reply queues an answer given on the reader's goroutine: when the queue
// is full the reader waits, and so reads no more from a client that does
// not read its answers.
func (t *tcpConn) reply(r *Request, resp []byte) {
	select {
	case t.out <- frame(r, resp, t.p.cfg.UDPSize):
	case <-t.done:
	}
}

func (t *tcpConn) detach(*Request) responder { return tcpLater{t} }

// tcpLater answers on a TCP connection from another goroutine (the
// forwarder's): it never waits; an answer that finds the queue full is
// dropped, the client will retry.
type tcpLater struct{ t *tcpConn }

func (l tcpLater) reply(r *Request, resp []byte) {
	select {
	case l.t.out <- frame(r, resp, l.t.p.cfg.UDPSize):
	case <-l.t.done:
	default:
		l.t.p.log.Debug("TCP client does not read its answers; dropping one", "client", l.t.c.RemoteAddr().String())
	}
}

func (l tcpLater) detach(*Request) responder { return l }

// writeLoop writes the queued answers until the connection ends; a write
// that fails or takes longer than tcpIdle ends it.
func (t *tcpConn) writeLoop() {
	for {
		select {
		case <-t.done:
			return
		case f := <-t.out:
			t.c.SetWriteDeadline(time.Now().Add(tcpIdle))
			if _, err := t.c.Write(f); err != nil {
				t.close()
				return
			}
		}
	}
}

// readLoop reads length-prefixed queries and runs them down the chain
// until the client closes, stays idle for tcpIdle or sends garbage.
func (t *tcpConn) readLoop() {
	defer t.close()
	p, c := t.p, t.c
	var src netip.AddrPort
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = a.AddrPort()
	}
	var lenBuf [2]byte
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		if _, err := io.ReadFull(c, lenBuf[:]); err != nil {
			return
		}
		msg := make([]byte, binary.BigEndian.Uint16(lenBuf[:]))
		if _, err := io.ReadFull(c, msg); err != nil {
			return
		}
		r := &Request{Buf: make([]byte, 0, 512), TCP: true, Src: src, Now: p.now(), w: t}
		if !p.admit(msg, r, src.Addr()) {
			if len(msg) < headerLen {
				return
			}
			continue
		}
		p.chain(r)
	}
}
