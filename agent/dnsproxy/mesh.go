package dnsproxy

import "sync/atomic"

// Table answers the names of the mesh. *nametable.Index implements it:
// AppendResponse appends to dst the complete response to query (whose
// question ends at qend and whose lowercased wire name is qname) and
// reports false, leaving dst unchanged, for a name outside the mesh.
type Table interface {
	AppendResponse(dst, query []byte, qend int, qname []byte, qtype uint16) ([]byte, bool)
}

// Mesh is the first link of the chain: it answers names of the mesh name
// table and hands everything else on. Until a table is installed every
// query is handed on.
type Mesh struct {
	table atomic.Pointer[tableRef]
	hits  *counter
}

type tableRef struct{ t Table }

// NewMesh returns a Mesh with no table.
func NewMesh() *Mesh { return &Mesh{hits: new(counter)} }

// SetTable installs t atomically; queries being answered keep the table
// they started with. A nil t removes the table.
func (m *Mesh) SetTable(t Table) {
	if t == nil {
		m.table.Store(nil)
		return
	}
	m.table.Store(&tableRef{t})
}

// ServeDNS answers r from the table or calls next.
func (m *Mesh) ServeDNS(r *Request, next Next) {
	if ref := m.table.Load(); ref != nil && r.QClass == 1 {
		if resp, ok := ref.t.AppendResponse(r.Buf[:0], r.Msg, r.QEnd, r.QName, r.QType); ok {
			m.hits.inc()
			r.Reply(resp)
			return
		}
	}
	next(r)
}
