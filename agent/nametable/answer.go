package nametable

import (
	"sync/atomic"
)

// DNS constants used on the query path.
const (
	typeA     = 1
	typeCNAME = 5
	typePTR   = 12
	typeAAAA  = 28
	headerLen = 12
)

// roundRobin is the rotation counter, padded so it does not share a cache
// line with the read-only fields of the Index.
type roundRobin struct {
	_ [64]byte
	n atomic.Uint32
	_ [60]byte
}

// AppendResponse appends to dst the complete DNS response for query, whose question section (one question)
// ends at offset qend and whose lowercased wire-format qname is qname. The header ID and RD bit come from the query,
// QR, AA and RA are set, the question is copied verbatim from the query (so the client's 0x20 case is kept), and
// the answer section follows, using compression pointers to offset 12. ARCOUNT is 0 (the proxy appends EDNS OPT
// itself and handles truncation). It returns false, leaving dst unchanged, when the name is not in the mesh.
//
// Answered are A and AAAA queries for mesh names (NODATA when the name lacks
// the family) and PTR queries for mesh IPs; everything else, and any query
// that is not a standard class-IN query, returns false. It does not allocate
// unless dst lacks capacity.
func (ix *Index) AppendResponse(dst, query []byte, qend int, qname []byte, qtype uint16) ([]byte, bool) {
	nl := len(qname)
	if ix == nil || nl == 0 || nl > 255 || qname[nl-1] != 0 || qend != headerLen+nl+4 || len(query) < qend || query[qend-5] != 0 ||
		query[2]&0x78 != 0 || query[qend-2] != 0 || query[qend-1] != 1 {
		return dst, false
	}
	q := qname[:nl-1]
	switch qtype {
	case typeA, typeAAAA:
		n, target := ix.resolve(q)
		if n == nil {
			if ix.held != nil {
				ix.countWithheld(q)
			}
			return dst, false
		}
		return ix.appendAddrs(dst, query, qend, n, target, qtype), true
	case typePTR:
		k, ok := parseReverse(q)
		if !ok {
			return dst, false
		}
		n := ix.ptr[k]
		if n == nil {
			return dst, false
		}
		dst = appendHeader(dst, query, qend, 1)
		dst = append(dst, 0xc0, headerLen, 0, typePTR, 0, 1)
		dst = append(dst, ix.ttl[:]...)
		l := len(n.fqdn) + 1
		dst = append(dst, byte(l>>8), byte(l))
		dst = append(dst, n.fqdn...)
		return append(dst, 0), true
	}
	return dst, false
}

// resolve finds the node answering for q (a wire name without the final
// zero). target is nil for a direct answer; for a search-list expansion it is
// the prefix of q that the CNAME points to.
func (ix *Index) resolve(q []byte) (n *node, target []byte) {
	if n = ix.names[string(q)]; n != nil {
		return n, nil
	}
	if len(ix.search) == 0 && len(ix.wild) == 0 {
		return nil, nil
	}
	// Label starts of q, as a bitset and in order. A name of at most 254
	// bytes whose labels are 1 to 63 bytes long has at most 127 of them;
	// anything else (an empty interior label, a compression pointer) is
	// not a name of the index.
	var starts [128]uint8
	var isStart [4]uint64
	ns := 0
	for off := 0; off < len(q); off += 1 + int(q[off]) {
		if q[off] == 0 || q[off] > 63 {
			return nil, nil
		}
		starts[ns] = uint8(off)
		isStart[off>>6] |= 1 << (off & 63)
		ns++
	}
	if ns == 0 || int(starts[ns-1])+1+int(q[starts[ns-1]]) != len(q) {
		return nil, nil // malformed name
	}
	// "<name>.<search>." -> CNAME "<name>."
	for _, s := range ix.search {
		b := len(q) - len(s)
		if b <= 0 || isStart[b>>6]&(1<<(b&63)) == 0 || string(q[b:]) != s {
			continue
		}
		if n = ix.names[string(q[:b])]; n != nil {
			return n, q[:b]
		}
	}
	if len(ix.wild) == 0 {
		return nil, nil
	}
	// Wildcards, most specific first.
	for i := 1; i < ns; i++ {
		if l := len(q) - int(starts[i]); ix.wildLn[l>>6]&(1<<(l&63)) == 0 {
			continue
		}
		if n = ix.wild[string(q[starts[i]:])]; n != nil {
			return n, nil
		}
	}
	// "<name under a wildcard>.<search>." -> CNAME "<name>."
	for _, s := range ix.search {
		b := len(q) - len(s)
		if b <= 0 || isStart[b>>6]&(1<<(b&63)) == 0 || string(q[b:]) != s {
			continue
		}
		for i := 1; i < ns && int(starts[i]) < b; i++ {
			if l := b - int(starts[i]); ix.wildLn[l>>6]&(1<<(l&63)) == 0 {
				continue
			}
			if n = ix.wild[string(q[starts[i]:b])]; n != nil {
				return n, q[:b]
			}
		}
	}
	return nil, nil
}

// appendHeader appends the response header and the query's question.
func appendHeader(dst, query []byte, qend int, ancount int) []byte {
	start := len(dst)
	dst = append(dst, query[:qend]...)
	h := dst[start:]
	h[2] = 0x80 | 0x04 | query[2]&0x01 // QR, AA, RD from the query; opcode QUERY
	h[3] = 0x80 | query[3]&0x10        // RA, CD from the query; rcode NOERROR
	h[4], h[5] = 0, 1
	h[6], h[7] = byte(ancount>>8), byte(ancount)
	h[8], h[9], h[10], h[11] = 0, 0, 0, 0
	return dst
}

func (ix *Index) appendAddrs(dst, query []byte, qend int, n *node, target []byte, qtype uint16) []byte {
	off, count, size := int(n.off), int(n.n4), bodyA
	if qtype == typeAAAA {
		off, count, size = off+int(n.n4)*bodyA, int(n.n6), bodyAAAA
	}
	an := count
	if target != nil {
		an++
	}
	dst = appendHeader(dst, query, qend, an)
	owner := uint16(0xc000 | headerLen)
	if target != nil {
		// CNAME record; the addresses then name its target by pointing
		// at the target inside its rdata.
		l := len(target) + 1
		dst = append(dst, 0xc0, headerLen, 0, typeCNAME, 0, 1)
		dst = append(dst, ix.ttl[:]...)
		dst = append(dst, byte(l>>8), byte(l))
		dst = append(dst, target...)
		dst = append(dst, 0)
		owner = uint16(0xc000 | (qend + 12))
	}
	if count == 0 {
		return dst
	}
	recs := ix.recs[off : off+count*size]
	first := 0
	if count > 1 {
		first = int(ix.rr.n.Add(1) % uint32(count))
	}
	for i := 0; i < count; i++ {
		j := first + i
		if j >= count {
			j -= count
		}
		dst = append(dst, byte(owner>>8), byte(owner))
		dst = append(dst, recs[j*size:(j+1)*size]...)
	}
	return dst
}

// parseReverse parses a reverse-lookup wire name (without the final zero)
// for a whole address: 4 labels under in-addr.arpa or 32 under ip6.arpa.
func parseReverse(q []byte) (k [16]byte, ok bool) {
	const v4sfx = "\x07in-addr\x04arpa"
	const v6sfx = "\x03ip6\x04arpa"
	switch {
	case len(q) > len(v4sfx) && string(q[len(q)-len(v4sfx):]) == v4sfx:
		p := q[:len(q)-len(v4sfx)]
		k[10], k[11] = 0xff, 0xff
		for i := 15; i >= 12; i-- {
			if len(p) < 2 {
				return k, false
			}
			l := int(p[0])
			if l < 1 || l > 3 || len(p) < 1+l || (l > 1 && p[1] == '0') {
				return k, false
			}
			v := 0
			for _, c := range p[1 : 1+l] {
				if c < '0' || c > '9' {
					return k, false
				}
				v = v*10 + int(c-'0')
			}
			if v > 255 {
				return k, false
			}
			k[i] = byte(v)
			p = p[1+l:]
		}
		return k, len(p) == 0
	case len(q) == 64+len(v6sfx) && string(q[64:]) == v6sfx:
		for i := 0; i < 32; i++ {
			if q[2*i] != 1 {
				return k, false
			}
			c := q[2*i+1]
			var v byte
			switch {
			case c >= '0' && c <= '9':
				v = c - '0'
			case c >= 'a' && c <= 'f':
				v = c - 'a' + 10
			default:
				return k, false
			}
			// Label i is nibble 31-i of the address.
			pos := 31 - i
			if pos%2 == 0 {
				k[pos/2] |= v << 4
			} else {
				k[pos/2] |= v
			}
		}
		return k, true
	}
	return k, false
}
