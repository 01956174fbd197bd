package nametable

import "sync/atomic"

// Live holds the index in use and lets a new one replace it atomically while
// queries are answered. The zero value holds no index and answers nothing.
type Live struct {
	p atomic.Pointer[Index]
}

// Load returns the index in use, or nil.
func (l *Live) Load() *Index { return l.p.Load() }

// Store makes ix the index in use; queries already running finish on the
// index they started with.
func (l *Live) Store(ix *Index) { l.p.Store(ix) }

// AppendResponse answers from the index in use; see Index.AppendResponse.
// With no index it returns false.
func (l *Live) AppendResponse(dst, query []byte, qend int, qname []byte, qtype uint16) ([]byte, bool) {
	return l.p.Load().AppendResponse(dst, query, qend, qname, qtype)
}
