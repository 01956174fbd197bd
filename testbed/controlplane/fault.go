package controlplane

import "fmt"

// NDSFault is a deliberate defect in NDS pushes, for negative tests of the
// agent.
type NDSFault string

// NDS faults.
const (
	// FaultNone sends correct tables.
	FaultNone NDSFault = ""
	// FaultMalformed sends a NameTable resource whose bytes do not parse.
	FaultMalformed NDSFault = "malformed"
	// FaultWrongType sends a resource of another type under the NDS type URL.
	FaultWrongType NDSFault = "wrongtype"
	// FaultInvalid sends a NameTable that decodes but holds an entry whose
	// address is not an IP ("broken.fault.test": "not-an-ip"). An agent
	// that behaves as Istio's applies the table without that entry.
	FaultInvalid NDSFault = "invalid"
)

// ParseNDSFault parses "malformed", "wrongtype", "invalid" or "none".
func ParseNDSFault(s string) (NDSFault, error) {
	switch s {
	case "none", "":
		return FaultNone, nil
	case string(FaultMalformed):
		return FaultMalformed, nil
	case string(FaultWrongType):
		return FaultWrongType, nil
	case string(FaultInvalid):
		return FaultInvalid, nil
	}
	return FaultNone, fmt.Errorf("unknown NDS fault %q; use malformed, wrongtype, invalid or none", s)
}

// Fault is the set of injected faults.
type Fault struct {
	NDS NDSFault `json:"nds"`
}

// SetFault replaces the injected faults and pushes to every connection so
// the change takes effect at once.
func (s *Server) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
	s.log.Warn("fault injection changed", "nds", string(f.NDS))
	s.Push()
}
