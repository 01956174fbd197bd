package identity

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// tokenExpiry reads the exp claim of a compact JWT. ok is false when the
// token cannot be read; the CA then decides.
func tokenExpiry(tok string) (exp time.Time, ok bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Exp == nil || *c.Exp < 0 || *c.Exp > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(int64(*c.Exp), 0), true
}
