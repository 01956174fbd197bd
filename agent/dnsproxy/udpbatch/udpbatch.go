// Package udpbatch reads and writes UDP datagrams in batches with the Linux
// recvmmsg(2) and sendmmsg(2) system calls, on a socket that stays integrated
// with Go's network poller. One Batch is owned by one goroutine; its buffers
// are reused across calls, so a steady read/answer loop allocates nothing.
package udpbatch

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Batch holds the buffers of up to N datagrams: payload, peer address and
// the kernel's message headers for both directions.
type Batch struct {
	rc syscall.RawConn

	// In holds the received payloads after Read: In[i] for i < the count
	// Read returned, each sliced to its length.
	In [][]byte
	// Out holds the answers to send with Write: Out[i] answers In[i]; an
	// empty Out[i] sends nothing for that datagram.
	Out [][]byte

	inBuf  [][]byte
	names  []unix.RawSockaddrInet6
	rmsgs  []unix.Mmsghdr
	riov   []unix.Iovec
	wmsgs  []unix.Mmsghdr
	wiov   []unix.Iovec
	n      int
	rerr   error
	rcount int
	readFn func(fd uintptr) bool
	wn     int
	wsent  int
	werr   error
	wrFn   func(fd uintptr) bool
}

// New prepares a Batch of n datagrams of at most size bytes each on c.
func New(c *net.UDPConn, n, size int) (*Batch, error) {
	if n < 1 || size < 512 {
		return nil, fmt.Errorf("udpbatch: batch of %d datagrams of %d bytes is too small; use n >= 1 and size >= 512", n, size)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("udpbatch: raw access to %s: %w", c.LocalAddr(), err)
	}
	b := &Batch{
		rc:    rc,
		In:    make([][]byte, n),
		Out:   make([][]byte, n),
		inBuf: make([][]byte, n),
		names: make([]unix.RawSockaddrInet6, n),
		rmsgs: make([]unix.Mmsghdr, n),
		riov:  make([]unix.Iovec, n),
		wmsgs: make([]unix.Mmsghdr, n),
		wiov:  make([]unix.Iovec, n),
		n:     n,
	}
	mem := make([]byte, n*size)
	for i := range n {
		b.inBuf[i] = mem[i*size : (i+1)*size : (i+1)*size]
		b.riov[i].Base = &b.inBuf[i][0]
		b.riov[i].SetLen(size)
		b.rmsgs[i].Hdr.Iov = &b.riov[i]
		b.rmsgs[i].Hdr.SetIovlen(1)
		b.rmsgs[i].Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	b.readFn = b.doRead
	b.wrFn = b.doWrite
	return b, nil
}

func (b *Batch) doRead(fd uintptr) bool {
	for i := range b.n {
		b.rmsgs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		b.rmsgs[i].Len = 0
	}
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rmsgs[0])), uintptr(b.n), unix.MSG_DONTWAIT, 0, 0)
	if e == unix.EAGAIN {
		return false
	}
	if e == unix.EINTR {
		return false
	}
	if e != 0 {
		b.rerr = e
		return true
	}
	b.rcount = int(r)
	return true
}

// Read blocks until at least one datagram arrives and returns how many were
// received into In.
func (b *Batch) Read() (int, error) {
	b.rerr, b.rcount = nil, 0
	if err := b.rc.Read(b.readFn); err != nil {
		return 0, err
	}
	if b.rerr != nil {
		return 0, b.rerr
	}
	for i := range b.rcount {
		b.In[i] = b.inBuf[i][:b.rmsgs[i].Len]
		b.Out[i] = b.Out[i][:0]
	}
	return b.rcount, nil
}

// Addr returns the source address of datagram i of the last Read.
func (b *Batch) Addr(i int) netip.AddrPort {
	return SockaddrToAddrPort(&b.names[i])
}

// SourceIP returns the source IP of datagram i of the last Read, without
// allocating.
func (b *Batch) SourceIP(i int) netip.Addr {
	sa := &b.names[i]
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(s4.Addr)
	case unix.AF_INET6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// SockaddrToAddrPort converts a raw IPv4 or IPv6 socket address.
func SockaddrToAddrPort(sa *unix.RawSockaddrInet6) netip.AddrPort {
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&s4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

func (b *Batch) doWrite(fd uintptr) bool {
	for b.wsent < b.wn {
		r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.wmsgs[b.wsent])), uintptr(b.wn-b.wsent), unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
			b.wsent += int(r)
		case unix.EAGAIN:
			return false
		case unix.EINTR:
			continue
		default:
			// A datagram the kernel refuses (e.g. an unreachable peer)
			// is skipped; the rest of the batch still goes out.
			b.werr = e
			b.wsent++
		}
	}
	return true
}

// Write sends Out[i] to the source of In[i] for every i < n with a
// non-empty answer. Errors for single datagrams are skipped; the last one is
// returned after the whole batch is attempted.
func (b *Batch) Write(n int) error {
	b.wn, b.wsent, b.werr = 0, 0, nil
	for i := range n {
		if len(b.Out[i]) == 0 {
			continue
		}
		m := &b.wmsgs[b.wn]
		b.wiov[b.wn].Base = &b.Out[i][0]
		b.wiov[b.wn].SetLen(len(b.Out[i]))
		m.Hdr.Iov = &b.wiov[b.wn]
		m.Hdr.SetIovlen(1)
		m.Hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		m.Hdr.Namelen = b.rmsgs[i].Hdr.Namelen
		b.wn++
	}
	if b.wn == 0 {
		return nil
	}
	if err := b.rc.Write(b.wrFn); err != nil {
		return err
	}
	return b.werr
}

// ErrClosed reports whether err means the socket was closed.
func ErrClosed(err error) bool { return errors.Is(err, net.ErrClosed) }
