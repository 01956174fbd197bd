package bundle

import (
	"testing"
)

func FuzzParseClusterEnv(f *testing.F) {
	for _, s := range []string{"A='x'\n", "export A=\"b\\\"c\"\n# c\n", "A='it'\\''s'\n", "A=1 #c\nB=", "A='\n", "A=$B"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := ParseClusterEnv(data)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %v is not *Error", err)
			}
			return
		}
		// Whatever parses must survive a format/parse round trip.
		env := map[string]string{}
		for _, l := range lines {
			env[l.Key] = l.Value
		}
		out, err := FormatClusterEnv(env)
		if err != nil {
			t.Fatalf("parsed keys do not format: %v", err)
		}
		again, err := ParseClusterEnv(out)
		if err != nil {
			t.Fatalf("formatted output does not parse: %v\n%q", err, out)
		}
		if len(again) != len(env) {
			t.Fatalf("round trip lost keys")
		}
		for _, l := range again {
			if env[l.Key] != l.Value {
				t.Fatalf("round trip changed %s: %q -> %q", l.Key, env[l.Key], l.Value)
			}
		}
	})
}

func FuzzParseMeshYAML(f *testing.F) {
	for _, s := range []string{"defaultConfig:\n  discoveryAddress: a:1\n", "defaultConfig:\n  readinessProbe:\n    tcpSocket:\n      port: 80\n", "", "- x", "defaultConfig: {drainDuration: 5s, controlPlaneAuthPolicy: NONE}"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		mc, err := ParseMeshYAML(data)
		if err != nil {
			return
		}
		out, err := FormatMeshYAML(mc.ProxyConfig)
		if err != nil {
			t.Fatalf("parsed ProxyConfig does not format: %v", err)
		}
		if _, err := ParseMeshYAML(out); err != nil {
			t.Fatalf("formatted mesh.yaml does not parse: %v\n%s", err, out)
		}
	})
}

func FuzzParseHosts(f *testing.F) {
	for _, s := range []string{"10.0.0.1 istiod.istio-system.svc\n", "# c\n\n::1 a b # c\n", "x y\n", "1.2.3.4\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ents, err := ParseHosts(data)
		if err != nil {
			return
		}
		out, err := FormatHosts(ents)
		if err != nil {
			t.Fatalf("parsed entries do not format: %v", err)
		}
		again, err := ParseHosts(out)
		if err != nil || len(again) != len(ents) {
			t.Fatalf("round trip: %v, %d vs %d entries", err, len(again), len(ents))
		}
	})
}

func FuzzParseToken(f *testing.F) {
	f.Add(testJWT(map[string]any{"exp": 1700000000, "aud": "istio-ca"}))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := ParseToken(tok)
		if err == nil && c.Expiry.IsZero() && c.Expiry.Unix() != 0 {
			t.Fatal("accepted token without expiry")
		}
	})
}
