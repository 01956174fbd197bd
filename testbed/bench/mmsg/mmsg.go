// Package mmsg serves UDP datagrams in batches with recvmmsg(2) and
// sendmmsg(2): one system call reads up to a batch of requests and one system
// call writes all the replies. The benchmark's UDP echo (the machine's
// ceiling) and its loopback upstream responder are built on it, so the only
// cost they add over the kernel's is the per-datagram handler.
package mmsg

import (
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxDatagram is the largest datagram a Conn reads; longer ones are cut.
const MaxDatagram = 4096

// Handler turns a request into its reply in place. It is called with the
// whole buffer and the request's length n; it writes the reply into buf and
// returns the reply's length, or 0 to send nothing back.
type Handler func(buf []byte, n int) int

// Conn is a bound UDP socket served by one goroutine locked to its thread,
// which blocks in recvmmsg and answers with sendmmsg.
type Conn struct {
	fd     int
	local  netip.AddrPort
	closed atomic.Bool
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
	family := unix.AF_INET
	var sa unix.Sockaddr
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("mmsg: socket for %s: %w", addr, err)
	}
	fail := func(what string, err error) (*Conn, error) {
		unix.Close(fd)
		return nil, fmt.Errorf("mmsg: %s on %s: %w", what, addr, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return fail("SO_REUSEPORT", err)
	}
	// Large socket buffers keep bursts from dnsperf from being dropped.
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	// A receive timeout lets Serve notice Close while otherwise idle.
	tv := unix.Timeval{Usec: 200_000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fail("SO_RCVTIMEO", err)
	}
	if err := unix.Bind(fd, sa); err != nil {
		return fail("bind (is the port taken? pick another)", err)
	}
	bound, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	c := &Conn{fd: fd}
	switch s := bound.(type) {
	case *unix.SockaddrInet4:
		c.local = netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port))
	case *unix.SockaddrInet6:
		c.local = netip.AddrPortFrom(netip.AddrFrom16(s.Addr), uint16(s.Port))
	}
	return c, nil
}

// LocalAddr is the address the socket is bound to, with the kernel's port
// when Listen was given port 0.
func (c *Conn) LocalAddr() netip.AddrPort { return c.local }

// Close makes Serve return within the receive timeout (200 ms); Serve
// releases the socket as it returns. A Conn is served once.
func (c *Conn) Close() error {
	c.closed.Store(true)
	return nil
}

// Serve reads up to batch datagrams per recvmmsg call, runs h on each and
// sends the non-empty replies back to their senders with one sendmmsg call.
// It returns nil after Close, or the first unexpected socket error.
func (c *Conn) Serve(batch int, h Handler) error {
	defer unix.Close(c.fd)
	if batch < 1 || batch > 1024 {
		return fmt.Errorf("mmsg: batch %d out of range; use 1..1024", batch)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	bufs := make([][]byte, batch)
	iovs := make([]unix.Iovec, batch)
	names := make([]unix.RawSockaddrAny, batch)
	in := make([]unix.Mmsghdr, batch)
	out := make([]unix.Mmsghdr, batch)
	outIovs := make([]unix.Iovec, batch)
	for i := range bufs {
		bufs[i] = make([]byte, MaxDatagram)
		iovs[i].Base = &bufs[i][0]
		iovs[i].SetLen(MaxDatagram)
	}
	for {
		for i := range in {
			in[i].Hdr = unix.Msghdr{
				Name:    (*byte)(unsafe.Pointer(&names[i])),
				Namelen: uint32(unsafe.Sizeof(names[i])),
				Iov:     &iovs[i],
				Iovlen:  1,
			}
			in[i].Len = 0
		}
		r, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(c.fd),
			uintptr(unsafe.Pointer(&in[0])), uintptr(batch), unix.MSG_WAITFORONE, 0, 0)
		if errno != 0 {
			if c.closed.Load() {
				return nil
			}
			if errno == unix.EAGAIN || errno == unix.EINTR {
				continue
			}
			return fmt.Errorf("mmsg: recvmmsg on %s: %w", c.local, errno)
		}
		got := int(r)
		c.Received.Add(uint64(got))
		nout := 0
		for i := 0; i < got; i++ {
			n := int(in[i].Len)
			if n > MaxDatagram {
				n = MaxDatagram
			}
			m := h(bufs[i], n)
			if m <= 0 || m > MaxDatagram {
				continue
			}
			outIovs[nout].Base = &bufs[i][0]
			outIovs[nout].SetLen(m)
			out[nout].Hdr = unix.Msghdr{
				Name:    in[i].Hdr.Name,
				Namelen: in[i].Hdr.Namelen,
				Iov:     &outIovs[nout],
				Iovlen:  1,
			}
			nout++
		}
		for sent := 0; sent < nout; {
			r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, uintptr(c.fd),
				uintptr(unsafe.Pointer(&out[sent])), uintptr(nout-sent), 0, 0, 0)
			if errno != 0 {
				if errno == unix.EINTR || errno == unix.EAGAIN {
					continue
				}
				// A reply that cannot be sent (peer gone, buffer full) is
				// dropped, as a DNS server would; the client times it out.
				if errors.Is(errno, unix.ECONNREFUSED) || errors.Is(errno, unix.ENOBUFS) {
					sent++
					continue
				}
				return fmt.Errorf("mmsg: sendmmsg on %s: %w", c.local, errno)
			}
			sent += int(r)
			c.Sent.Add(uint64(r))
		}
		if c.closed.Load() {
			return nil
		}
	}
}
