package dnsproxy

import (
	"encoding/binary"
	"net"
	"net/netip"
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
	for {
		n, err := b.Read()
		if err != nil {
			if p.isClosed() || udpbatch.ErrClosed(err) {
				return
			}
			p.log.Warn("UDP read failed", "addr", pc.LocalAddr().String(), "error", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		now := time.Now()
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
	for {
		n, addr, err := pc.ReadFrom(in)
		if err != nil {
			if p.isClosed() {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		var src netip.AddrPort
		if ua, ok := addr.(*net.UDPAddr); ok {
			src = ua.AddrPort()
		}
		r := &Request{Buf: make([]byte, 0, udpOutSize), Src: src, Now: time.Now()}
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

// TCP limits: idle connections close, and at most maxTCPConns are served.
const (
	tcpIdle     = 10 * time.Second
	maxTCPConns = 256
)

func (p *Proxy) serveTCP(l net.Listener) {
	sem := make(chan struct{}, maxTCPConns)
	for {
		c, err := l.Accept()
		if err != nil {
			if p.isClosed() {
				return
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		select {
		case sem <- struct{}{}:
		default:
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.tcpConns[c] = struct{}{}
		p.mu.Unlock()
		go func() {
			defer func() { <-sem }()
			p.serveTCPConn(c)
			p.mu.Lock()
			delete(p.tcpConns, c)
			p.mu.Unlock()
		}()
	}
}

// tcpWriter answers on a TCP connection; answers to pipelined queries may
// come back in any order.
type tcpWriter struct {
	p  *Proxy
	c  net.Conn
	mu chanMutex
}

type chanMutex chan struct{}

func (m chanMutex) lock()   { m <- struct{}{} }
func (m chanMutex) unlock() { <-m }

func (t *tcpWriter) reply(r *Request, resp []byte) {
	out := finalize(r, resp, t.p.cfg.UDPSize)
	frame := make([]byte, 2, 2+len(out))
	binary.BigEndian.PutUint16(frame, uint16(len(out)))
	frame = append(frame, out...)
	t.mu.lock()
	t.c.SetWriteDeadline(time.Now().Add(tcpIdle))
	t.c.Write(frame)
	t.mu.unlock()
}

func (t *tcpWriter) detach(*Request) responder { return t }

func (p *Proxy) serveTCPConn(c net.Conn) {
	defer c.Close()
	var src netip.AddrPort
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		src = a.AddrPort()
	}
	w := &tcpWriter{p: p, c: c, mu: make(chanMutex, 1)}
	var lenBuf [2]byte
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdle))
		if _, err := readFull(c, lenBuf[:]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint16(lenBuf[:]))
		msg := make([]byte, n)
		if _, err := readFull(c, msg); err != nil {
			return
		}
		r := &Request{Buf: make([]byte, 0, 512), TCP: true, Src: src, Now: time.Now(), w: w}
		if !p.admit(msg, r, src.Addr()) {
			if len(msg) < headerLen {
				return
			}
			continue
		}
		p.chain(r)
	}
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
