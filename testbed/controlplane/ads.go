package controlplane

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"github.com/onramp-mesh/onramp/testbed/mesh"
	"github.com/onramp-mesh/onramp/workloadentry"
)

// HealthInfoTypeURL is the type URL of the health reports workloads send on
// their ADS stream.
const HealthInfoTypeURL = "type.googleapis.com/istio.v1.HealthInformation"

// connection is one ADS stream.
type connection struct {
	id          uint64
	conID       string
	node        *NodeInfo
	who         *caller
	connectedAt time.Time
	pushCh      chan struct{}

	// entryNS/entryName name the auto-registered WorkloadEntry, if any.
	entryNS, entryName string

	mu  sync.Mutex
	nds ndsState
}

// ndsState is the NDS watch of one connection.
type ndsState struct {
	Subscribed   bool      `json:"subscribed"`
	SentVersion  string    `json:"sentVersion,omitempty"`
	SentNonce    string    `json:"sentNonce,omitempty"`
	SentAt       time.Time `json:"sentAt,omitzero"`
	Pushes       int       `json:"pushes"`
	AckedVersion string    `json:"ackedVersion,omitempty"`
	AckedNonce   string    `json:"ackedNonce,omitempty"`
	Acks         int       `json:"acks"`
	Nacks        int       `json:"nacks"`
	LastNack     string    `json:"lastNack,omitempty"`
	LastNackAt   time.Time `json:"lastNackAt,omitzero"`
	lastTable    *ndspb.NameTable
}

// DeltaAggregatedResources is not served; clients use the state-of-the-world
// stream.
func (s *Server) DeltaAggregatedResources(discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return status.Error(codes.Unimplemented, "delta ADS is not served by the testbed control plane; use StreamAggregatedResources")
}

// StreamAggregatedResources serves one ADS stream: authentication, node
// checks, auto-registration, NDS pushes and health reports.
func (s *Server) StreamAggregatedResources(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	ctx := stream.Context()
	who, err := s.authenticate(ctx)
	if err != nil {
		s.log.Warn("ADS: authentication failed", "error", err)
		return err
	}

	reqs := make(chan *discoveryv3.DiscoveryRequest)
	recvErr := make(chan error, 1)
	go func() {
		for {
			req, err := stream.Recv()
			if err != nil {
				recvErr <- err
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			}
		}
	}()

	var first *discoveryv3.DiscoveryRequest
	select {
	case first = <-reqs:
	case err := <-recvErr:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return status.Error(codes.Unavailable, "control plane shutting down")
	}

	node, err := ParseNode(first.GetNode())
	if err != nil {
		s.log.Warn("ADS: bad node", "peer", who.Addr, "error", err)
		return status.Error(codes.InvalidArgument, err.Error())
	}
	if who.Identity != nil {
		if node.Namespace != who.Identity.Namespace ||
			(node.ServiceAccount != "" && node.ServiceAccount != who.Identity.ServiceAccount) {
			msg := fmt.Sprintf("authorization failed: identity %s does not match node %s (NAMESPACE %q, SERVICE_ACCOUNT %q)",
				who.Identity, node.ID, node.Namespace, node.ServiceAccount)
			s.log.Warn("ADS: unauthorized", "peer", who.Addr, "error", msg)
			return status.Error(codes.PermissionDenied, msg)
		}
	}
	if node.IstioVersion == "" {
		s.log.Warn("ADS: node sent no ISTIO_VERSION", "node", node.ID)
	}

	con := s.addConnection(node, who)
	defer s.removeConnection(con)

	if node.AutoRegisterGroup != "" {
		if err := s.autoRegister(con); err != nil {
			return err
		}
		defer s.registry.Disconnect(con.entryNS, con.entryName)
	}
	s.log.Info("ADS: connected", "conn", con.conID, "peer", who.Addr, "auth", string(who.Method), "cluster", node.ClusterID)

	if err := s.handleRequest(stream, con, first); err != nil {
		return err
	}
	for {
		select {
		case req := <-reqs:
			if err := s.handleRequest(stream, con, req); err != nil {
				return err
			}
		case <-con.pushCh:
			if err := s.pushNDS(stream, con); err != nil {
				return err
			}
		case err := <-recvErr:
			s.log.Info("ADS: disconnected", "conn", con.conID, "reason", err)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return status.Error(codes.Unavailable, "control plane shutting down")
		}
	}
}

func (s *Server) autoRegister(con *connection) error {
	n := con.node
	if len(n.IPs) == 0 {
		return status.Errorf(codes.InvalidArgument, "auto-registration of %s into WorkloadGroup %s/%s failed: the node has no IP; send INSTANCE_IPS", n.ID, n.Namespace, n.AutoRegisterGroup)
	}
	g, ok := s.opts.Mesh.WorkloadGroup(n.Namespace, n.AutoRegisterGroup)
	if !ok {
		msg := fmt.Sprintf("auto-registration WorkloadEntry of %s failed: cannot find WorkloadGroup %s/%s; create it or fix AUTO_REGISTER_GROUP",
			n.ID, n.Namespace, n.AutoRegisterGroup)
		s.log.Warn("ADS: "+msg, "conn", con.conID)
		return status.Error(codes.FailedPrecondition, msg)
	}
	e, err := s.registry.Connect(g, workloadentry.Node{IP: n.IPs[0], Network: n.Network, Labels: n.Labels, HealthChecks: n.HealthChecks})
	if err != nil {
		return status.Errorf(codes.FailedPrecondition, "auto-registration WorkloadEntry of %s failed: %v", n.ID, err)
	}
	con.entryNS, con.entryName = e.Namespace, e.Name
	return nil
}

func (s *Server) handleRequest(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer, con *connection, req *discoveryv3.DiscoveryRequest) error {
	switch req.GetTypeUrl() {
	case HealthInfoTypeURL:
		s.handleHealth(con, req)
		return nil
	case ndspb.TypeURL:
	default:
		s.log.Debug("ADS: request for a type this control plane does not generate; ignored", "conn", con.conID, "type", req.GetTypeUrl())
		return nil
	}
	con.mu.Lock()
	st := &con.nds
	switch {
	case req.GetErrorDetail() != nil:
		st.Nacks++
		st.LastNack = req.GetErrorDetail().GetMessage()
		st.LastNackAt = time.Now()
		con.mu.Unlock()
		s.log.Warn("ADS: NDS rejected by client (NACK)", "conn", con.conID, "nonce", req.GetResponseNonce(), "error", req.GetErrorDetail().GetMessage())
		return nil
	case !st.Subscribed:
		st.Subscribed = true
		con.mu.Unlock()
		return s.pushNDS(stream, con)
	case req.GetResponseNonce() == "":
		// a re-subscription on the same stream: send the current table
		con.mu.Unlock()
		return s.pushNDS(stream, con)
	case req.GetResponseNonce() != st.SentNonce:
		con.mu.Unlock()
		s.log.Debug("ADS: stale nonce ignored", "conn", con.conID, "nonce", req.GetResponseNonce())
		return nil
	default:
		st.Acks++
		st.AckedVersion, st.AckedNonce = req.GetVersionInfo(), req.GetResponseNonce()
		con.mu.Unlock()
		s.log.Debug("ADS: NDS ACK", "conn", con.conID, "version", req.GetVersionInfo())
		return nil
	}
}

func (s *Server) handleHealth(con *connection, req *discoveryv3.DiscoveryRequest) {
	if con.entryName == "" {
		s.log.Debug("ADS: health report from a workload that is not auto-registered; ignored", "conn", con.conID)
		return
	}
	healthy := req.GetErrorDetail() == nil
	msg := req.GetErrorDetail().GetMessage()
	if _, err := s.registry.SetHealth(con.entryNS, con.entryName, healthy, msg); err != nil {
		s.log.Warn("ADS: health report not applied", "conn", con.conID, "error", err)
	}
}

func (s *Server) proxyOf(n *NodeInfo) mesh.Proxy {
	return mesh.Proxy{Namespace: n.Namespace, ClusterID: n.ClusterID, IPs: n.IPs, DNSCapture: n.DNSCapture, Labels: n.Labels}
}

func (s *Server) pushNDS(stream discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesServer, con *connection) error {
	con.mu.Lock()
	subscribed := con.nds.Subscribed
	con.mu.Unlock()
	if !subscribed {
		return nil
	}
	table := s.opts.Mesh.NameTable(s.proxyOf(con.node))
	if table == nil {
		table = &ndspb.NameTable{}
	}
	var res *anypb.Any
	s.mu.Lock()
	fault := s.fault
	s.mu.Unlock()
	switch fault.NDS {
	case FaultMalformed:
		// a truncated varint: not a parsable NameTable
		res = &anypb.Any{TypeUrl: ndspb.TypeURL, Value: []byte{0x0a, 0xff, 0xff, 0xff}}
	case FaultWrongType:
		res = &anypb.Any{TypeUrl: "type.googleapis.com/google.protobuf.Empty"}
	default:
		if fault.NDS == FaultInvalid {
			table = proto.Clone(table).(*ndspb.NameTable)
			if table.Table == nil {
				table.Table = map[string]*ndspb.NameInfo{}
			}
			table.Table["broken.fault.test"] = &ndspb.NameInfo{Ips: []string{"not-an-ip"}, Registry: ndspb.RegistryExternal}
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(table)
		if err != nil {
			return status.Errorf(codes.Internal, "marshal name table: %v", err)
		}
		res = &anypb.Any{TypeUrl: ndspb.TypeURL, Value: b}
	}
	version := fmt.Sprintf("%s/%d", s.opts.Mesh.Version(), s.pushSeq.Add(1))
	nonce := newNonce()
	resp := &discoveryv3.DiscoveryResponse{
		VersionInfo:  version,
		Resources:    []*anypb.Any{res},
		TypeUrl:      ndspb.TypeURL,
		Nonce:        nonce,
		ControlPlane: &corev3.ControlPlane{Identifier: s.controlPlaneID()},
	}
	// Record before sending, so an ACK or a debug read that follows the
	// response always finds it; a failed Send ends the stream anyway.
	con.mu.Lock()
	con.nds.SentVersion, con.nds.SentNonce, con.nds.SentAt = version, nonce, time.Now()
	con.nds.Pushes++
	con.nds.lastTable = table
	con.mu.Unlock()
	if err := stream.Send(resp); err != nil {
		return err
	}
	s.stats.pushes.Add(1)
	s.log.Debug("ADS: pushed NDS", "conn", con.conID, "version", version, "names", len(table.GetTable()), "fault", string(fault.NDS))
	return nil
}

// controlPlaneID is DiscoveryResponse.control_plane.identifier in istiod's
// form: {"Component":"istiod","ID":<instance>,"Info":{...}}.
func (s *Server) controlPlaneID() string {
	b, _ := json.Marshal(map[string]any{
		"Component": "istiod",
		"ID":        s.opts.Controller,
		"Info":      map[string]string{"version": "onramp-testbed", "status": "Clean"},
	})
	return string(b)
}

func newNonce() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func (s *Server) addConnection(n *NodeInfo, who *caller) *connection {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	c := &connection{
		id:          s.nextID,
		conID:       fmt.Sprintf("%s-%d", n.ID, s.nextID),
		node:        n,
		who:         who,
		connectedAt: time.Now(),
		pushCh:      make(chan struct{}, 1),
	}
	s.conns[c.id] = c
	return c
}

func (s *Server) removeConnection(c *connection) {
	s.mu.Lock()
	delete(s.conns, c.id)
	s.mu.Unlock()
}

// Push sends the current name table to every subscribed connection. Wire it
// to the mesh store's change notifications.
func (s *Server) Push() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		select {
		case c.pushCh <- struct{}{}:
		default: // a push is already pending
		}
	}
}

// connections returns the open connections, oldest first.
func (s *Server) connections() []*connection {
	s.mu.Lock()
	out := make([]*connection, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}
