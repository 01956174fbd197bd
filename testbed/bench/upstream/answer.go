package main

import "encoding/binary"

const (
	headerLen   = 12
	answerLen   = 16 // compressed name (2) + type, class (4) + TTL (4) + rdlength (2) + IPv4 (4)
	typeA       = 1
	typeANY     = 255
	classIN     = 1
	rcodeFormat = 1
	rcodeNotImp = 4
	maxNameLen  = 255
)

// responder holds the reply settings shared by every query.
type responder struct {
	ttl uint32
}

// answer rewrites the DNS query in buf[:n] into its reply and returns the
// reply's length, or 0 for datagrams that get no reply (responses, runts).
// The reply is authoritative, echoes the question, and for an A query of
// class IN carries one A record (a compression pointer to the question name).
func (r *responder) answer(buf []byte, n int) int {
	if n < headerLen || n > len(buf) {
		return 0
	}
	if buf[2]&0x80 != 0 { // QR set: a response, never answer it
		return 0
	}
	opcode := (buf[2] >> 3) & 0x0f
	rd := buf[2] & 0x01
	qd := binary.BigEndian.Uint16(buf[4:6])
	if opcode != 0 {
		return errorReply(buf, opcode, rd, rcodeNotImp)
	}
	if qd != 1 {
		return errorReply(buf, opcode, rd, rcodeFormat)
	}
	end, h, ok := scanName(buf[:n], headerLen)
	if !ok || end+4 > n {
		return errorReply(buf, opcode, rd, rcodeFormat)
	}
	qtype := binary.BigEndian.Uint16(buf[end : end+2])
	qclass := binary.BigEndian.Uint16(buf[end+2 : end+4])
	end += 4

	buf[2] = 0x80 | opcode<<3 | 0x04 | rd // QR, opcode, AA, RD
	buf[3] = 0                            // RA clear, NOERROR
	binary.BigEndian.PutUint16(buf[6:8], 0)
	binary.BigEndian.PutUint16(buf[8:10], 0)
	binary.BigEndian.PutUint16(buf[10:12], 0)
	if (qtype != typeA && qtype != typeANY) || qclass != classIN || end+answerLen > len(buf) {
		return end
	}
	binary.BigEndian.PutUint16(buf[6:8], 1)
	a := buf[end : end+answerLen]
	a[0], a[1] = 0xc0, headerLen // pointer to the question name
	binary.BigEndian.PutUint16(a[2:4], typeA)
	binary.BigEndian.PutUint16(a[4:6], classIN)
	binary.BigEndian.PutUint32(a[6:10], r.ttl)
	binary.BigEndian.PutUint16(a[10:12], 4)
	a[12], a[13], a[14], a[15] = 198, 18|byte(h>>16)&1, byte(h>>8), byte(h)
	return end + answerLen
}

// errorReply turns the query into a header-only reply with rcode.
func errorReply(buf []byte, opcode, rd, rcode byte) int {
	buf[2] = 0x80 | opcode<<3 | rd
	buf[3] = rcode
	for i := 4; i < headerLen; i++ {
		buf[i] = 0
	}
	return headerLen
}

// scanName walks the uncompressed name starting at off and returns the offset
// just past it and an FNV-1a hash of its labels, case-folded so that 0x20
// randomised queries get the same address.
func scanName(msg []byte, off int) (end int, hash uint32, ok bool) {
	hash = 2166136261
	total := 0
	for {
		if off >= len(msg) {
			return 0, 0, false
		}
		l := int(msg[off])
		if l == 0 {
			return off + 1, hash, true
		}
		if l > 63 { // compression pointers and extended labels have no place in a question
			return 0, 0, false
		}
		total += l + 1
		if total > maxNameLen || off+1+l > len(msg) {
			return 0, 0, false
		}
		for _, c := range msg[off+1 : off+1+l] {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			hash ^= uint32(c)
			hash *= 16777619
		}
		hash ^= '.'
		hash *= 16777619
		off += 1 + l
	}
}
