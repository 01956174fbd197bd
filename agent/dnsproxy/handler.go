package dnsproxy

import (
	"net/netip"
	"time"
)

// Handler is one link of the query path, in the manner of a CoreDNS plugin:
// it either answers r with r.Reply or hands r on with next(r).
//
// ServeDNS runs on the server's read loop and must not block. A handler that
// has to wait (the forwarder) calls r.Detach, returns at once and replies
// later from another goroutine.
type Handler interface {
	ServeDNS(r *Request, next Next)
}

// Next passes a request to the rest of the chain.
type Next func(r *Request)

// HandlerFunc adapts a function to a Handler.
type HandlerFunc func(r *Request, next Next)

// ServeDNS calls f(r, next).
func (f HandlerFunc) ServeDNS(r *Request, next Next) { f(r, next) }

// Chain links handlers in order: the first one sees each query first, and
// a query no handler answers gets SERVFAIL.
func Chain(handlers ...Handler) Next {
	next := Next(func(r *Request) { r.Reply(appendHeaderOnly(r.Buf[:0], r, rcodeServFail)) })
	for i := len(handlers) - 1; i >= 0; i-- {
		h, n := handlers[i], next
		next = func(r *Request) { h.ServeDNS(r, n) }
	}
	return next
}

// Request is one DNS query on its way down the chain. The server fills it
// from the wire; the byte slices are owned by the server and valid only
// until ServeDNS returns, unless the request was detached.
type Request struct {
	// Msg is the raw query.
	Msg []byte
	// QEnd is the offset in Msg just past the question.
	QEnd int
	// QName is the lowercased wire-format question name.
	QName []byte
	// QType and QClass come from the question.
	QType, QClass uint16
	// ID and Flags are the header's ID and flags word.
	ID, Flags uint16
	// EDNS tells whether the query had an OPT record; UDPSize and DO are its
	// advertised payload size and DNSSEC OK bit.
	EDNS    bool
	UDPSize uint16
	DO      bool
	// TCP is true for queries that came over TCP.
	TCP bool
	// Src is the client's address.
	Src netip.AddrPort
	// Now is when the query was read.
	Now time.Time
	// Buf is scratch space with capacity for a response: handlers append
	// their answer to Buf[:0] and pass the result to Reply.
	Buf []byte

	w       responder
	nameBuf [maxName]byte
}

// responder delivers the response to a request: to the batch being
// written, to a socket later, or to a cache collecting an upstream answer.
type responder interface {
	reply(r *Request, resp []byte)
	// detach returns a responder that stays valid after ServeDNS returns.
	detach(r *Request) responder
}

// Reply sends resp, a complete response whose header ID, flags and question
// match the query. The server adds the EDNS OPT record and truncates to
// the client's size; handlers never do.
func (r *Request) Reply(resp []byte) { r.w.reply(r, resp) }

// Detach returns a copy of r that owns its bytes and can be answered after
// ServeDNS has returned, from any goroutine, exactly once.
func (r *Request) Detach() *Request {
	d := &Request{
		QEnd: r.QEnd, QType: r.QType, QClass: r.QClass, ID: r.ID, Flags: r.Flags,
		EDNS: r.EDNS, UDPSize: r.UDPSize, DO: r.DO, TCP: r.TCP, Src: r.Src, Now: r.Now,
	}
	d.Msg = append([]byte(nil), r.Msg...)
	n := copy(d.nameBuf[:], r.QName)
	d.QName = d.nameBuf[:n]
	d.w = r.w.detach(r)
	return d
}

// cacheFlags are the query bits that change an answer: DO and CD.
func (r *Request) cacheFlags() uint8 {
	var f uint8
	if r.DO {
		f |= 1
	}
	if r.Flags&flagCD != 0 {
		f |= 2
	}
	return f
}
