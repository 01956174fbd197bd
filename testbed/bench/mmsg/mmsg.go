// Package mmsg serves UDP datagrams in batches with recvmmsg(2) and
// sendmmsg(2), through the same batching layer as onramp's own UDP server
// (agent/dnsproxy/udpbatch): one system call reads up to a batch of requests
// and one writes all the replies. The benchmark's UDP echo (the machine's
// ceiling) and its loopback upstream responder are built on it, so the only
// cost they add over the kernel's and that layer's is the per-datagram handler.
package mmsg

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/onramp-mesh/onramp/agent/dnsproxy/udpbatch"
)

// MaxDatagram is the largest datagram a Conn reads; longer ones are cut.
const MaxDatagram = 4096

// Handler turns a request into its reply in place. It is called with the
// whole buffer and the request's length n; it writes the reply into buf and
// returns the reply's length, or 0 to send nothing back.
type Handler func(buf []byte, n int) int

// Conn is a bound UDP socket served by one goroutine.
type Conn struct {
	c     *net.UDPConn
	local netip.AddrPort
	// Received counts datagrams read; Sent counts replies written.
	Received, Sent atomic.Uint64
}

// Listen binds a UDP socket on addr ("127.0.0.1:0", "[::1]:5353") with
// SO_REUSEPORT set, so several Conns may share one port.
func Listen(addr string) (*Conn, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("mmsg: listen address %q is not IP:port: %w", addr, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			// Large socket buffers keep bursts from dnsperf from being dropped.
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(context.Background(), "udp", ap.String())
	if err != nil {
		return nil, fmt.Errorf("mmsg: listen on %s (is the port taken? pick another): %w", addr, err)
	}
	c := pc.(*net.UDPConn)
	return &Conn{c: c, local: c.LocalAddr().(*net.UDPAddr).AddrPort()}, nil
}

// LocalAddr is the address the socket is bound to, with the kernel's port
// when Listen was given port 0.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Close makes Serve return. A Conn is served once.
func (c *Conn) Close() error { return c.c.Close() }

// Serve reads up to batch datagrams per recvmmsg call, runs h on each and
// sends the non-empty replies back to their senders with one sendmmsg call.
// It returns nil after Close, or the first unexpected socket error.
func (c *Conn) Serve(batch int, h Handler) error {
	if batch < 1 || batch > 1024 {
		return fmt.Errorf("mmsg: batch %d out of range; use 1..1024", batch)
	}
	b, err := udpbatch.New(c.c, batch, MaxDatagram)
	if err != nil {
		return err
	}
	for {
		n, err := b.Read()
		if err != nil {
			if udpbatch.ErrClosed(err) {
				return nil
			}
			return fmt.Errorf("mmsg: recvmmsg on %s: %w", c.local, err)
		}
		c.Received.Add(uint64(n))
		replies := 0
		for i := range n {
			buf := b.In[i][:MaxDatagram]
			if m := h(buf, len(b.In[i])); m > 0 && m <= MaxDatagram {
				b.Out[i] = buf[:m]
				replies++
			}
		}
		// A reply that cannot be sent (peer gone, buffer full) is dropped,
		// as a DNS server would; the client times it out.
		if err := b.Write(n); err != nil && udpbatch.ErrClosed(err) {
			return nil
		}
		c.Sent.Add(uint64(replies))
	}
}
