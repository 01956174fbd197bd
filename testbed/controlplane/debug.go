package controlplane

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/workloadentry"
)

// ConnectionInfo describes one ADS stream for /debug/connections.
type ConnectionInfo struct {
	ConnectionID   string    `json:"connectionId"`
	NodeID         string    `json:"nodeId"`
	Peer           string    `json:"peer"`
	TLS            bool      `json:"tls"`
	Auth           string    `json:"auth"`
	Identity       string    `json:"identity,omitempty"`
	ClusterID      string    `json:"clusterId"`
	Namespace      string    `json:"namespace"`
	ServiceAccount string    `json:"serviceAccount,omitempty"`
	IPs            []string  `json:"ips"`
	ConnectedAt    time.Time `json:"connectedAt"`
	WorkloadEntry  string    `json:"workloadEntry,omitempty"`
	NDS            ndsState  `json:"nds"`
}

// Connections describes the open ADS streams, oldest first.
func (s *Server) Connections() []ConnectionInfo {
	var out []ConnectionInfo
	for _, c := range s.connections() {
		ci := ConnectionInfo{
			ConnectionID:   c.conID,
			NodeID:         c.node.ID,
			Peer:           c.who.Addr,
			TLS:            c.who.TLS,
			Auth:           string(c.who.Method),
			ClusterID:      c.node.ClusterID,
			Namespace:      c.node.Namespace,
			ServiceAccount: c.node.ServiceAccount,
			ConnectedAt:    c.connectedAt,
		}
		if c.who.Identity != nil {
			ci.Identity = c.who.Identity.String()
		}
		for _, ip := range c.node.IPs {
			ci.IPs = append(ci.IPs, ip.String())
		}
		if c.entryName != "" {
			ci.WorkloadEntry = c.entryNS + "/" + c.entryName
		}
		c.mu.Lock()
		ci.NDS = c.nds
		c.mu.Unlock()
		out = append(out, ci)
	}
	return out
}

// NameTableFor returns the table last sent to the newest connection of the
// node with this ID, or the table it would get if none was sent yet.
func (s *Server) NameTableFor(nodeID string) (*ndspb.NameTable, bool) {
	conns := s.connections()
	for i := len(conns) - 1; i >= 0; i-- {
		c := conns[i]
		if c.node.ID != nodeID {
			continue
		}
		c.mu.Lock()
		t := c.nds.lastTable
		c.mu.Unlock()
		if t == nil {
			t = s.opts.Mesh.NameTable(s.proxyOf(c.node))
		}
		return t, true
	}
	return nil, false
}

// entryJSON is a WorkloadEntry in Kubernetes object form.
type entryJSON struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   entryMeta       `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
	Status     entryStatus     `json:"status"`
}

type entryMeta struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	Labels          map[string]string `json:"labels,omitempty"`
	Annotations     map[string]string `json:"annotations,omitempty"`
	OwnerReferences []ownerRef        `json:"ownerReferences,omitempty"`
}

type ownerRef struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Name       string `json:"name"`
	Controller bool   `json:"controller,omitempty"`
}

type entryStatus struct {
	Conditions []conditionJSON `json:"conditions,omitempty"`
}

type conditionJSON struct {
	Type               string `json:"type"`
	Status             string `json:"status"`
	Reason             string `json:"reason,omitempty"`
	Message            string `json:"message,omitempty"`
	LastTransitionTime string `json:"lastTransitionTime,omitempty"`
}

func toEntryJSON(e *workloadentry.Entry) entryJSON {
	spec, _ := protojson.Marshal(e.Spec)
	if len(spec) == 0 {
		spec = []byte("{}")
	}
	out := entryJSON{
		APIVersion: "networking.istio.io/v1",
		Kind:       "WorkloadEntry",
		Metadata:   entryMeta{Name: e.Name, Namespace: e.Namespace, Labels: e.Labels, Annotations: e.Annotations},
		Spec:       spec,
	}
	for _, o := range e.OwnerReferences {
		out.Metadata.OwnerReferences = append(out.Metadata.OwnerReferences, ownerRef(o))
	}
	for _, c := range e.Conditions {
		cj := conditionJSON{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message}
		if !c.LastTransition.IsZero() {
			cj.LastTransitionTime = c.LastTransition.UTC().Format(time.RFC3339Nano)
		}
		out.Status.Conditions = append(out.Status.Conditions, cj)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *Server) debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /debug/ca", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(s.opts.Authority.RootPEM())
	})
	mux.HandleFunc("GET /debug/connections", func(w http.ResponseWriter, r *http.Request) {
		conns := s.Connections()
		if conns == nil {
			conns = []ConnectionInfo{}
		}
		writeJSON(w, conns)
	})
	mux.HandleFunc("GET /debug/workloadentries", func(w http.ResponseWriter, r *http.Request) {
		list := []entryJSON{}
		for _, e := range s.registry.List() {
			list = append(list, toEntryJSON(e))
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /debug/nametable", func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("proxy")
		if id == "" {
			ids := map[string]bool{}
			for _, c := range s.connections() {
				ids[c.node.ID] = true
			}
			http.Error(w, fmt.Sprintf("name the node: /debug/nametable?proxy=<node id>; connected: %q", slices.Sorted(maps.Keys(ids))), http.StatusBadRequest)
			return
		}
		t, ok := s.NameTableFor(id)
		if !ok {
			http.Error(w, fmt.Sprintf("no connected node with id %q; see /debug/connections", id), http.StatusNotFound)
			return
		}
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(t)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	mux.HandleFunc("GET /debug/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"connections":        len(s.connections()),
			"ndsPushes":          s.stats.pushes.Load(),
			"certificatesIssued": s.stats.caIssued.Load(),
			"caFailures":         s.stats.caFailures.Load(),
			"workloadEntries":    len(s.registry.List()),
		})
	})
	mux.HandleFunc("GET /debug/fault", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		f := s.fault
		s.mu.Unlock()
		writeJSON(w, f)
	})
	mux.HandleFunc("POST /debug/fault", func(w http.ResponseWriter, r *http.Request) {
		f, err := ParseNDSFault(r.URL.Query().Get("nds"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetFault(Fault{NDS: f})
		writeJSON(w, Fault{NDS: f})
	})
	mux.HandleFunc("POST /debug/push", func(w http.ResponseWriter, r *http.Request) {
		s.Push()
		fmt.Fprintln(w, "pushed")
	})
	return mux
}
