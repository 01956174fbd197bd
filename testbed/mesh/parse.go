package mesh

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	"sigs.k8s.io/yaml"

	"github.com/onramp-mesh/onramp/workloadentry"
)

// Labels and annotations the package reads.
const (
	// LabelCluster names the cluster a Service or Endpoints object lives in
	// (label or annotation). Objects without it live in Options.DefaultCluster.
	LabelCluster = "topology.istio.io/cluster"
	// AnnotationClusterIPs gives a Service ClusterIPs in further clusters:
	// "cluster2=10.1.0.5,cluster3=10.2.0.5|fd00:2::5" ('|' separates the
	// addresses of one cluster).
	AnnotationClusterIPs = "testbed.onramp.dev/cluster-ips"
	// AnnotationExportTo is Istio's exportTo for Kubernetes Services
	// (comma-separated).
	AnnotationExportTo = "networking.istio.io/exportTo"
	// LabelAutoAllocate set to "false" on a ServiceEntry opts it out of VIP
	// auto-allocation.
	LabelAutoAllocate = "networking.istio.io/enable-autoallocate-ip"
)

type objectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type rawObject struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   objectMeta      `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
	Subsets    json.RawMessage `json:"subsets"`
}

// k8sServiceSpec is the part of a v1 Service the name table needs.
type k8sServiceSpec struct {
	Type                     string   `json:"type"`
	ClusterIP                string   `json:"clusterIP"`
	ClusterIPs               []string `json:"clusterIPs"`
	ExternalName             string   `json:"externalName"`
	PublishNotReadyAddresses bool     `json:"publishNotReadyAddresses"`
}

type k8sEndpointAddress struct {
	IP       string `json:"ip"`
	Hostname string `json:"hostname"`
}

type k8sSubset struct {
	Addresses         []k8sEndpointAddress `json:"addresses"`
	NotReadyAddresses []k8sEndpointAddress `json:"notReadyAddresses"`
}

// source says where an object came from, for error messages.
type source struct {
	file string
	doc  int // 1-based
	line int // 1-based line where the document starts
}

func (s source) String() string {
	return fmt.Sprintf("%s: document %d (line %d)", s.file, s.doc, s.line)
}

// objects are the parsed contents of a config directory.
type objects struct {
	serviceEntries []*serviceEntryObj
	services       []*k8sServiceObj
	endpoints      []*k8sEndpointsObj
	sidecars       []*sidecarObj
	groups         []*workloadentry.Group
	digest         []byte // concatenated contents, for the version
}

type serviceEntryObj struct {
	meta objectMeta
	spec *networkingv1alpha3.ServiceEntry
	src  source
}

type k8sServiceObj struct {
	meta    objectMeta
	cluster string
	spec    k8sServiceSpec
	// ips per cluster, parsed and checked.
	ips map[string][]netip.Addr
	src source
}

type k8sEndpointsObj struct {
	meta    objectMeta
	cluster string
	subsets []k8sSubset
	src     source
}

type sidecarObj struct {
	meta objectMeta
	spec *networkingv1alpha3.Sidecar
	src  source
}

var istioVersions = []string{"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"}

// readDir parses every *.yaml and *.yml file directly in dir, in name order.
func readDir(dir, defaultCluster string) (*objects, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("mesh: read config directory: %w; create it or pass the directory holding the mesh YAML", err)
	}
	out := &objects{}
	seen := map[string]source{}
	for _, de := range ents {
		name := de.Name()
		if de.IsDir() || !isConfigFile(name) {
			continue
		}
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("mesh: %w", err)
		}
		out.digest = append(out.digest, name...)
		out.digest = append(out.digest, 0)
		out.digest = append(out.digest, data...)
		if err := parseFile(path, data, defaultCluster, out, seen); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func isConfigFile(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	ext := filepath.Ext(name)
	return ext == ".yaml" || ext == ".yml"
}

type document struct {
	text []byte
	line int
}

// splitDocuments cuts a multi-document YAML stream on "---" lines.
func splitDocuments(data []byte) []document {
	var docs []document
	var cur bytes.Buffer
	start := 1
	line := 0
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), len(data)+1)
	for sc.Scan() {
		line++
		l := sc.Text()
		if strings.HasPrefix(l, "---") && strings.TrimSpace(strings.SplitN(l[3:], "#", 2)[0]) == "" {
			docs = append(docs, document{text: bytes.Clone(cur.Bytes()), line: start})
			cur.Reset()
			start = line + 1
			continue
		}
		cur.WriteString(l)
		cur.WriteByte('\n')
	}
	docs = append(docs, document{text: cur.Bytes(), line: start})
	return docs
}

// parseFile parses one file's documents into out. seen detects the same
// object defined twice.
func parseFile(path string, data []byte, defaultCluster string, out *objects, seen map[string]source) error {
	file := filepath.Base(path)
	for i, d := range splitDocuments(data) {
		src := source{file: file, doc: i + 1, line: d.line}
		if len(bytes.TrimSpace(stripComments(d.text))) == 0 {
			continue
		}
		js, err := yaml.YAMLToJSON(d.text)
		if err != nil {
			return fmt.Errorf("mesh: %s: invalid YAML: %v", src, err)
		}
		if bytes.Equal(bytes.TrimSpace(js), []byte("null")) {
			continue
		}
		var obj rawObject
		if err := json.Unmarshal(js, &obj); err != nil {
			return fmt.Errorf("mesh: %s: not a Kubernetes object (want apiVersion, kind, metadata): %v", src, jsonFieldError("", err))
		}
		if obj.Kind == "" || obj.APIVersion == "" {
			return fmt.Errorf("mesh: %s: field apiVersion or kind is missing", src)
		}
		if obj.Metadata.Name == "" {
			return fmt.Errorf("mesh: %s: %s has no metadata.name", src, obj.Kind)
		}
		if obj.Metadata.Namespace == "" {
			obj.Metadata.Namespace = "default"
		}
		what := fmt.Sprintf("%s %s/%s", obj.Kind, obj.Metadata.Namespace, obj.Metadata.Name)
		fail := func(format string, args ...any) error {
			return fmt.Errorf("mesh: %s: %s: %s", src, what, fmt.Sprintf(format, args...))
		}
		cluster := clusterOf(obj.Metadata, defaultCluster)
		key := obj.Kind + "/" + obj.Metadata.Namespace + "/" + obj.Metadata.Name
		isIstio := slices.Contains(istioVersions, obj.APIVersion)
		switch {
		case isIstio && obj.Kind == "ServiceEntry":
			spec := &networkingv1alpha3.ServiceEntry{}
			if err := unmarshalSpec(obj.Spec, spec); err != nil {
				return fail("%v", err)
			}
			if err := validateServiceEntry(spec); err != nil {
				return fail("%v", err)
			}
			out.serviceEntries = append(out.serviceEntries, &serviceEntryObj{meta: obj.Metadata, spec: spec, src: src})
		case isIstio && obj.Kind == "WorkloadGroup":
			spec := &networkingv1alpha3.WorkloadGroup{}
			if err := unmarshalSpec(obj.Spec, spec); err != nil {
				return fail("%v", err)
			}
			out.groups = append(out.groups, &workloadentry.Group{
				Meta: workloadentry.Meta{Name: obj.Metadata.Name, Namespace: obj.Metadata.Namespace, Labels: obj.Metadata.Labels, Annotations: obj.Metadata.Annotations},
				Spec: spec,
			})
		case isIstio && obj.Kind == "Sidecar":
			spec := &networkingv1alpha3.Sidecar{}
			if err := unmarshalSpec(obj.Spec, spec); err != nil {
				return fail("%v", err)
			}
			if err := validateSidecar(spec); err != nil {
				return fail("%v", err)
			}
			out.sidecars = append(out.sidecars, &sidecarObj{meta: obj.Metadata, spec: spec, src: src})
		case obj.APIVersion == "v1" && obj.Kind == "Service":
			key = cluster + "/" + key
			svc := &k8sServiceObj{meta: obj.Metadata, cluster: cluster, src: src}
			if len(obj.Spec) > 0 {
				if err := json.Unmarshal(obj.Spec, &svc.spec); err != nil {
					return fail("%v", jsonFieldError("spec", err))
				}
			}
			ips, err := serviceIPs(svc)
			if err != nil {
				return fail("%v", err)
			}
			svc.ips = ips
			out.services = append(out.services, svc)
		case obj.APIVersion == "v1" && obj.Kind == "Endpoints":
			key = cluster + "/" + key
			ep := &k8sEndpointsObj{meta: obj.Metadata, cluster: cluster, src: src}
			if len(obj.Subsets) > 0 {
				if err := json.Unmarshal(obj.Subsets, &ep.subsets); err != nil {
					return fail("%v", jsonFieldError("subsets", err))
				}
			}
			for si, s := range ep.subsets {
				for ai, a := range slices.Concat(s.Addresses, s.NotReadyAddresses) {
					if _, err := netip.ParseAddr(a.IP); err != nil {
						return fail("subsets[%d] address %d: ip %q is not an IP address", si, ai, a.IP)
					}
				}
			}
			out.endpoints = append(out.endpoints, ep)
		default:
			// Other kinds (Namespace, VirtualService, Deployment...) do not
			// shape the name table.
			continue
		}
		if prev, dup := seen[key]; dup {
			return fmt.Errorf("mesh: %s: %s is already defined at %s; remove one of them", src, what, prev)
		}
		seen[key] = src
	}
	return nil
}

// jsonFieldError names the field of a type mismatch, e.g.
// "spec.clusterIP: want string, got number (quote the value)".
func jsonFieldError(prefix string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if prefix != "" {
			field = prefix + "." + field
		}
		return fmt.Errorf("%s: want %s, got %s (quote values such as 10.1 or yes that YAML reads as numbers or booleans)", field, te.Type, te.Value)
	}
	if prefix != "" {
		return fmt.Errorf("%s: %w", prefix, err)
	}
	return err
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) == 0 || t[0] == '#' {
			continue
		}
		out = append(out, l...)
		out = append(out, '\n')
	}
	return out
}

func clusterOf(m objectMeta, def string) string {
	if c := m.Labels[LabelCluster]; c != "" {
		return c
	}
	if c := m.Annotations[LabelCluster]; c != "" {
		return c
	}
	return def
}

var specUnmarshal = protojson.UnmarshalOptions{}

func unmarshalSpec(raw json.RawMessage, m proto.Message) error {
	if len(raw) == 0 || string(raw) == "null" {
		return fmt.Errorf("field spec is missing")
	}
	if err := specUnmarshal.Unmarshal(raw, m); err != nil {
		return fmt.Errorf("spec: %v", strings.TrimPrefix(err.Error(), "proto: "))
	}
	return nil
}

func validateServiceEntry(se *networkingv1alpha3.ServiceEntry) error {
	if len(se.Hosts) == 0 {
		return fmt.Errorf("spec.hosts is empty; list at least one host")
	}
	for i, h := range se.Hosts {
		if h == "" || strings.ContainsAny(h, " /:") || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*")) || strings.Count(h, "*") > 1 {
			return fmt.Errorf("spec.hosts[%d] %q is not a hostname (wildcards only as a leading '*')", i, h)
		}
	}
	for i, a := range se.Addresses {
		if _, err := netip.ParseAddr(a); err == nil {
			continue
		}
		if _, err := netip.ParsePrefix(a); err == nil {
			continue
		}
		return fmt.Errorf("spec.addresses[%d] %q is neither an IP address nor a CIDR", i, a)
	}
	if err := validateExportTo(se.ExportTo, "spec.exportTo"); err != nil {
		return err
	}
	return nil
}

func validateExportTo(v []string, field string) error {
	for i, e := range v {
		if e == "" || strings.ContainsAny(e, " /") {
			return fmt.Errorf("%s[%d] %q must be \"*\", \".\", \"~\" or a namespace", field, i, e)
		}
	}
	return nil
}

func validateSidecar(sc *networkingv1alpha3.Sidecar) error {
	for i, eg := range sc.Egress {
		if len(eg.Hosts) == 0 {
			return fmt.Errorf("spec.egress[%d].hosts is empty; use \"*/*\" for everything", i)
		}
		for j, h := range eg.Hosts {
			ns, host, ok := strings.Cut(h, "/")
			if !ok || ns == "" || host == "" {
				return fmt.Errorf("spec.egress[%d].hosts[%d] %q must be namespace/host (e.g. \"./*\" or \"istio-system/*\")", i, j, h)
			}
		}
	}
	return nil
}

// serviceIPs returns the ClusterIPs of a Service per cluster: its own
// cluster from spec.clusterIP(s), further clusters from AnnotationClusterIPs.
// Headless and ExternalName services have none.
func serviceIPs(svc *k8sServiceObj) (map[string][]netip.Addr, error) {
	out := map[string][]netip.Addr{}
	s := svc.spec
	if s.Type == "ExternalName" {
		return out, nil
	}
	switch {
	case s.ClusterIP == "None":
		if v := svc.meta.Annotations[AnnotationClusterIPs]; v != "" {
			return nil, fmt.Errorf("annotation %s is set on a headless Service; remove it or give the Service a clusterIP", AnnotationClusterIPs)
		}
		return out, nil
	case s.ClusterIP == "" && len(s.ClusterIPs) == 0:
		return nil, fmt.Errorf("spec.clusterIP is empty; the testbed allocates none: set an address (e.g. 10.96.0.20) or None for a headless Service")
	}
	list := s.ClusterIPs
	if len(list) == 0 {
		list = []string{s.ClusterIP}
	} else if s.ClusterIP != "" && s.ClusterIP != list[0] {
		return nil, fmt.Errorf("spec.clusterIP %q differs from spec.clusterIPs[0] %q; make them equal", s.ClusterIP, list[0])
	}
	for i, v := range list {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("spec.clusterIPs[%d] %q is not an IP address", i, v)
		}
		out[svc.cluster] = append(out[svc.cluster], a.Unmap())
	}
	if v := svc.meta.Annotations[AnnotationClusterIPs]; v != "" {
		for _, part := range strings.Split(v, ",") {
			cl, ips, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok || cl == "" || ips == "" {
				return nil, fmt.Errorf("annotation %s: %q is not cluster=ip[|ip]", AnnotationClusterIPs, part)
			}
			if cl == svc.cluster {
				return nil, fmt.Errorf("annotation %s repeats the Service's own cluster %q; its ClusterIP comes from spec.clusterIP", AnnotationClusterIPs, cl)
			}
			for _, ipText := range strings.Split(ips, "|") {
				a, err := netip.ParseAddr(strings.TrimSpace(ipText))
				if err != nil {
					return nil, fmt.Errorf("annotation %s: cluster %s: %q is not an IP address", AnnotationClusterIPs, cl, ipText)
				}
				out[cl] = append(out[cl], a.Unmap())
			}
		}
	}
	return out, nil
}
