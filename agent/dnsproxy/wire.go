package dnsproxy

import (
	"encoding/binary"
	"errors"
)

// DNS header layout and the few codes the proxy needs on its hot path.
const (
	headerLen = 12
	maxName   = 255

	flagQR = 1 << 15
	flagAA = 1 << 10
	flagTC = 1 << 9
	flagRD = 1 << 8
	flagRA = 1 << 7
	flagCD = 1 << 4

	rcodeSuccess  = 0
	rcodeFormErr  = 1
	rcodeServFail = 2
	rcodeNXDomain = 3
	rcodeNotImp   = 4
	rcodeRefused  = 5

	typeSOA = 6
	typeOPT = 41

	optLen = 11 // root name, type, class, TTL, RDLENGTH 0
)

var (
	errShort     = errors.New("message truncated")
	errBadName   = errors.New("bad name")
	errNotQuery  = errors.New("not a query")
	errQDCount   = errors.New("question count is not 1")
	errBadOPT    = errors.New("bad OPT record")
	errBadOpcode = errors.New("opcode not supported")
)

// parseResult tells the server what to do with a datagram that is not a
// plain query it can pass down the chain.
type parseResult int

const (
	parseOK      parseResult = iota
	parseDrop                // header unreadable or a response: say nothing
	parseFormErr             // header readable: answer FORMERR
	parseNotImp              // opcode other than QUERY: answer NOTIMP
)

// parseQuery reads the header, the single question and the EDNS OPT record
// of msg into r. It allocates nothing: the lowercased qname goes to
// r.nameBuf.
func parseQuery(msg []byte, r *Request) (parseResult, error) {
	if len(msg) < headerLen {
		return parseDrop, errShort
	}
	flags := binary.BigEndian.Uint16(msg[2:])
	if flags&flagQR != 0 {
		return parseDrop, errNotQuery
	}
	r.Msg = msg
	r.ID = binary.BigEndian.Uint16(msg)
	r.Flags = flags
	r.EDNS, r.DO, r.UDPSize = false, false, 0
	if (flags>>11)&0xF != 0 {
		return parseNotImp, errBadOpcode
	}
	if binary.BigEndian.Uint16(msg[4:]) != 1 {
		return parseFormErr, errQDCount
	}
	off := headerLen
	n := 0
	for {
		if off >= len(msg) {
			return parseFormErr, errShort
		}
		l := int(msg[off])
		if l&0xC0 != 0 {
			return parseFormErr, errBadName
		}
		if n+l+1 > maxName {
			return parseFormErr, errBadName
		}
		if off+1+l > len(msg) {
			return parseFormErr, errShort
		}
		r.nameBuf[n] = byte(l)
		n++
		if l == 0 {
			off++
			break
		}
		for _, c := range msg[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			r.nameBuf[n] = c
			n++
		}
		off += 1 + l
	}
	if off+4 > len(msg) {
		return parseFormErr, errShort
	}
	r.QName = r.nameBuf[:n]
	r.QType = binary.BigEndian.Uint16(msg[off:])
	r.QClass = binary.BigEndian.Uint16(msg[off+2:])
	off += 4
	r.QEnd = off
	an := int(binary.BigEndian.Uint16(msg[6:]))
	ns := int(binary.BigEndian.Uint16(msg[8:]))
	ar := int(binary.BigEndian.Uint16(msg[10:]))
	if an+ns+ar == 0 {
		return parseOK, nil
	}
	// Rare: records beyond the question. Skip answer and authority, look
	// for exactly one well-formed OPT in the additional section.
	for i := 0; i < an+ns+ar; i++ {
		name := off
		var err error
		off, err = skipName(msg, off)
		if err != nil {
			return parseFormErr, err
		}
		if off+10 > len(msg) {
			return parseFormErr, errShort
		}
		typ := binary.BigEndian.Uint16(msg[off:])
		rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
		if off+10+rdlen > len(msg) {
			return parseFormErr, errShort
		}
		if typ == typeOPT {
			if i < an+ns || r.EDNS || off != name+1 || msg[name] != 0 {
				return parseFormErr, errBadOPT
			}
			r.EDNS = true
			r.UDPSize = binary.BigEndian.Uint16(msg[off+2:])
			r.DO = msg[off+6]&0x80 != 0
			if err := checkOptions(msg[off+10 : off+10+rdlen]); err != nil {
				return parseFormErr, err
			}
		}
		off += 10 + rdlen
	}
	return parseOK, nil
}

// checkOptions verifies that the EDNS options of an OPT RDATA are well formed.
func checkOptions(b []byte) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return errBadOPT
		}
		l := int(binary.BigEndian.Uint16(b[2:]))
		if 4+l > len(b) {
			return errBadOPT
		}
		b = b[4+l:]
	}
	return nil
}

// skipName returns the offset just past the (possibly compressed) name at
// off.
func skipName(msg []byte, off int) (int, error) {
	for hops := 0; ; hops++ {
		if off >= len(msg) || hops > 127 {
			return 0, errShort
		}
		l := int(msg[off])
		switch {
		case l == 0:
			return off + 1, nil
		case l&0xC0 == 0xC0:
			if off+2 > len(msg) {
				return 0, errShort
			}
			return off + 2, nil
		case l&0xC0 != 0:
			return 0, errBadName
		}
		off += 1 + l
	}
}

// rr describes one resource record found by walkRRs.
type rr struct {
	start   int // first byte of the owner name
	hdr     int // offset of TYPE
	end     int // first byte after RDATA
	typ     uint16
	section int // 0 answer, 1 authority, 2 additional
}

func (x rr) ttl(msg []byte) uint32 { return binary.BigEndian.Uint32(msg[x.hdr+4:]) }

// walkRRs calls fn for every record after the question of a response whose
// question ends at qend. It stops with an error on malformed input.
func walkRRs(msg []byte, qend int, fn func(rr) error) error {
	if len(msg) < headerLen {
		return errShort
	}
	counts := [3]int{
		int(binary.BigEndian.Uint16(msg[6:])),
		int(binary.BigEndian.Uint16(msg[8:])),
		int(binary.BigEndian.Uint16(msg[10:])),
	}
	off := qend
	for sec, c := range counts {
		for range c {
			start := off
			var err error
			off, err = skipName(msg, off)
			if err != nil {
				return err
			}
			if off+10 > len(msg) {
				return errShort
			}
			rdlen := int(binary.BigEndian.Uint16(msg[off+8:]))
			if off+10+rdlen > len(msg) {
				return errShort
			}
			x := rr{start: start, hdr: off, end: off + 10 + rdlen, typ: binary.BigEndian.Uint16(msg[off:]), section: sec}
			if err := fn(x); err != nil {
				return err
			}
			off = x.end
		}
	}
	return nil
}

// sameQuestion reports whether the question of resp (ending at qend) asks
// for the lowercased wire name qname with qtype and qclass.
func sameQuestion(resp []byte, qend int, qname []byte, qtype, qclass uint16) bool {
	if qend != headerLen+len(qname)+4 || len(resp) < qend {
		return false
	}
	for i, c := range resp[headerLen : headerLen+len(qname)] {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != qname[i] {
			return false
		}
	}
	return binary.BigEndian.Uint16(resp[qend-4:]) == qtype && binary.BigEndian.Uint16(resp[qend-2:]) == qclass
}

// appendHeaderOnly appends a response with no records to the query r: its
// question (if parsed) and the given rcode.
func appendHeaderOnly(dst []byte, r *Request, rcode int) []byte {
	flags := r.Flags&(flagRD|flagCD|0x7800) | flagQR | flagRA | uint16(rcode)
	qd := uint16(0)
	if r.QEnd > headerLen {
		qd = 1
	}
	dst = binary.BigEndian.AppendUint16(dst, r.ID)
	dst = binary.BigEndian.AppendUint16(dst, flags)
	dst = binary.BigEndian.AppendUint16(dst, qd)
	dst = append(dst, 0, 0, 0, 0, 0, 0)
	if qd == 1 {
		dst = append(dst, r.Msg[headerLen:r.QEnd]...)
	}
	return dst
}

// appendOPT appends an OPT record advertising size, with the DO bit if do,
// and counts it in ARCOUNT of msg.
func appendOPT(msg []byte, size int, do bool) []byte {
	var ttl byte
	if do {
		ttl = 0x80
	}
	msg = append(msg, 0, 0, typeOPT, byte(size>>8), byte(size), 0, 0, ttl, 0, 0, 0)
	binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])+1)
	return msg
}

// stripOPT removes OPT records from the additional section of msg in place
// and returns the shortened message.
func stripOPT(msg []byte, qend int) ([]byte, error) {
	if len(msg) < headerLen || qend > len(msg) {
		return nil, errShort
	}
	if binary.BigEndian.Uint16(msg[10:]) == 0 {
		return msg, nil
	}
	var opts [][2]int
	err := walkRRs(msg, qend, func(x rr) error {
		if x.typ == typeOPT && x.section == 2 {
			opts = append(opts, [2]int{x.start, x.end})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := len(opts) - 1; i >= 0; i-- {
		o := opts[i]
		msg = append(msg[:o[0]], msg[o[1]:]...)
		binary.BigEndian.PutUint16(msg[10:], binary.BigEndian.Uint16(msg[10:])-1)
	}
	return msg, nil
}
