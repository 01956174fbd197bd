package bundle

import (
	"fmt"
	"strings"
	"time"
)

// Error is a defect in one file of a bundle. File is the bundle-relative file
// name (cluster.env, mesh.yaml, ...); Line and Key narrow it down when known.
type Error struct {
	// Dir is the bundle directory ("" when parsing bytes directly).
	Dir string
	// File is the file at fault, one of the File* constants.
	File string
	// Line is the 1-based line number, 0 when not tied to a line.
	Line int
	// Key is the cluster.env key or mesh.yaml field at fault, if any.
	Key string
	// Msg says what is wrong and, where it helps, what to do.
	Msg string
	// Err is the underlying error, if any.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("bundle: ")
	if e.Dir != "" {
		b.WriteString(strings.TrimSuffix(e.Dir, "/"))
		b.WriteByte('/')
	}
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, " key %s", e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// TokenError reports that the bundle's istio-token has expired. Load does not
// fail on it, because an agent holding a still-valid stored certificate can run
// without the token; Bundle.ValidateToken returns it when the token is needed.
type TokenError struct {
	// Path is the token file.
	Path string
	// Expiry is the token's exp claim.
	Expiry time.Time
	// Now is the time the token was checked at.
	Now time.Time
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("bundle: %s expired at %s (checked at %s); mint a new bundle with istioctl x workload entry configure",
		e.Path, e.Expiry.UTC().Format(time.RFC3339), e.Now.UTC().Format(time.RFC3339))
}
