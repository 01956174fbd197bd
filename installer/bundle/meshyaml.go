package bundle

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"
)

// MeshConfig is the parsed mesh.yaml.
type MeshConfig struct {
	// ProxyConfig is defaultConfig (never nil).
	ProxyConfig *meshv1alpha1.ProxyConfig
	// AuthPolicySet is true when defaultConfig names controlPlaneAuthPolicy
	// explicitly. Its proto default is NONE, but Istio's mesh default is
	// MUTUAL_TLS, so only an explicit NONE means plaintext.
	AuthPolicySet bool
	// UnknownFields lists defaultConfig fields this build's ProxyConfig does
	// not know; they are dropped.
	UnknownFields []string
}

// ParseMeshYAML parses mesh.yaml: a MeshConfig document whose defaultConfig
// is a ProxyConfig. Only defaultConfig is read; other top-level keys are
// ignored. Fields of defaultConfig are decoded strictly (wrong types and bad
// enum values are errors) except that fields unknown to this build's
// istio.io/api are dropped and reported in UnknownFields, so that a bundle
// from a newer istioctl still loads. An empty file yields an empty ProxyConfig.
func ParseMeshYAML(data []byte) (*MeshConfig, error) {
	out := &MeshConfig{ProxyConfig: &meshv1alpha1.ProxyConfig{}}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, &Error{File: FileMeshYAML, Msg: "not valid YAML", Err: err}
	}
	if s := strings.TrimSpace(string(js)); s == "null" || s == "" {
		return out, nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, &Error{File: FileMeshYAML, Msg: "top level is not a mapping; want `defaultConfig:` with a ProxyConfig", Err: err}
	}
	raw, ok := top["defaultConfig"]
	if !ok || string(raw) == "null" {
		return out, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, &Error{File: FileMeshYAML, Key: "defaultConfig", Msg: "is not a mapping", Err: err}
	}
	_, out.AuthPolicySet = fields["controlPlaneAuthPolicy"]
	if _, snake := fields["control_plane_auth_policy"]; snake {
		out.AuthPolicySet = true
	}
	// Decode field by field so that an error names its field and unknown
	// fields can be told apart from bad values.
	desc := out.ProxyConfig.ProtoReflect().Descriptor().Fields()
	var known []string
	for name := range fields {
		if desc.ByJSONName(name) == nil && desc.ByTextName(name) == nil {
			out.UnknownFields = append(out.UnknownFields, name)
			continue
		}
		known = append(known, name)
		one, _ := json.Marshal(map[string]json.RawMessage{name: fields[name]})
		if err := protojson.Unmarshal(one, &meshv1alpha1.ProxyConfig{}); err != nil {
			return nil, &Error{File: FileMeshYAML, Key: "defaultConfig." + name, Msg: "invalid value", Err: err}
		}
	}
	sub := make(map[string]json.RawMessage, len(known))
	for _, k := range known {
		sub[k] = fields[k]
	}
	all, _ := json.Marshal(sub)
	if err := protojson.Unmarshal(all, out.ProxyConfig); err != nil {
		return nil, &Error{File: FileMeshYAML, Key: "defaultConfig", Msg: "invalid ProxyConfig", Err: err}
	}
	sort.Strings(out.UnknownFields)
	return out, nil
}

// FormatMeshYAML renders pc as mesh.yaml (`defaultConfig:` followed by the
// ProxyConfig in its JSON field names).
func FormatMeshYAML(pc *meshv1alpha1.ProxyConfig) ([]byte, error) {
	if pc == nil {
		pc = &meshv1alpha1.ProxyConfig{}
	}
	js, err := protojson.Marshal(pc)
	if err != nil {
		return nil, &Error{File: FileMeshYAML, Msg: "cannot encode ProxyConfig", Err: err}
	}
	wrapped := fmt.Sprintf(`{"defaultConfig":%s}`, js)
	y, err := yaml.JSONToYAML([]byte(wrapped))
	if err != nil {
		return nil, &Error{File: FileMeshYAML, Msg: "cannot encode ProxyConfig as YAML", Err: err}
	}
	return y, nil
}
