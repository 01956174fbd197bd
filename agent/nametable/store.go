package nametable

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"

	"github.com/onramp-mesh/onramp/agent/atomicfile"
	"github.com/onramp-mesh/onramp/agent/xds/ndspb"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// DefaultStoreDir is where the agent keeps its state.
const DefaultStoreDir = "/var/lib/onramp"

// StoreFile is the name of the last-known-good table inside Store.Dir.
const StoreFile = "nametable.bin"

// storeMagic starts every stored table. The layout is:
//
//	magic | uint32 len(version) | version | uint32 len(table) | table (binary proto) | uint32 CRC-32C of all before
var storeMagic = []byte("onramp-nametable/1\n")

// maxStored bounds what Load reads, against a runaway file.
const maxStored = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Store keeps the last good name table on disk so that DNS answers at boot
// before istiod is reachable.
type Store struct {
	// Dir holds the file; DefaultStoreDir when empty.
	Dir string
}

// Path returns the file the store reads and writes.
func (s *Store) Path() string {
	d := s.Dir
	if d == "" {
		d = DefaultStoreDir
	}
	return filepath.Join(d, StoreFile)
}

// Save writes t and its ADS version atomically (temporary file, fsync,
// rename, fsync of the directory), mode 0644. The previous file stays intact
// if anything fails.
func (s *Store) Save(t *ndspb.NameTable, version string) error {
	path := s.Path()
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(t)
	if err != nil {
		return fmt.Errorf("nametable: encoding table for %s: %w", path, err)
	}
	var b bytes.Buffer
	b.Grow(len(storeMagic) + 12 + len(version) + len(payload))
	b.Write(storeMagic)
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(version))))
	b.WriteString(version)
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(payload))))
	b.Write(payload)
	b.Write(binary.BigEndian.AppendUint32(nil, crc32.Checksum(b.Bytes(), castagnoli)))

	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("nametable: creating state directory: %w", err)
	}
	if err := atomicfile.Write(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("nametable: saving table: %w", err)
	}
	return nil
}

// Load reads the stored table and its version. With no stored table the
// error wraps os.ErrNotExist. A damaged file returns an error saying so; the
// caller should log it and wait for istiod's next push, which overwrites it.
func (s *Store) Load() (*ndspb.NameTable, string, error) {
	path := s.Path()
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("nametable: no stored table: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("nametable: reading stored table: %w", err)
	}
	if st.Size() > maxStored {
		return nil, "", corrupt(path, fmt.Sprintf("it is %d bytes, more than any table", st.Size()))
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, "", fmt.Errorf("nametable: reading stored table %s: %w", path, err)
	}
	return decodeStored(path, data)
}

func corrupt(path, why string) error {
	return fmt.Errorf("nametable: stored table %s is damaged (%s); ignoring it until istiod sends a new table, which replaces it", path, why)
}

func decodeStored(path string, data []byte) (*ndspb.NameTable, string, error) {
	if !bytes.HasPrefix(data, storeMagic) {
		return nil, "", corrupt(path, "it does not start with the onramp name table header")
	}
	if len(data) < len(storeMagic)+12 {
		return nil, "", corrupt(path, "it is truncated")
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, "", corrupt(path, "checksum mismatch: truncated or overwritten")
	}
	p := body[len(storeMagic):]
	vl := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(vl)+4 > uint64(len(p)) {
		return nil, "", corrupt(path, "bad version length")
	}
	version := string(p[:vl])
	p = p[vl:]
	tl := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(tl) != uint64(len(p)) {
		return nil, "", corrupt(path, "bad table length")
	}
	t := new(ndspb.NameTable)
	if err := proto.Unmarshal(p, t); err != nil {
		return nil, "", corrupt(path, err.Error())
	}
	return t, version, nil
}

// LoadJSON reads a NameTable in protojson form, as used by
// `onramp run --name-table FILE.json`:
//
//	{"table": {"productpage.ns1.svc.cluster.local": {"ips": ["10.96.0.10"],
//	  "registry": "Kubernetes", "shortname": "productpage", "namespace": "ns1"}}}
//
// Errors name the file and, for syntax errors, the line and column.
func LoadJSON(path string) (*ndspb.NameTable, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("nametable: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("nametable: %s is empty; want a JSON object like {\"table\": {\"host\": {\"ips\": [\"10.0.0.1\"]}}}", path)
	}
	t := new(ndspb.NameTable)
	if err := protojson.Unmarshal(data, t); err != nil {
		return nil, fmt.Errorf("nametable: %s: %v; want a JSON object like {\"table\": {\"host\": {\"ips\": [\"10.0.0.1\"], \"registry\": \"External\"}}}", path, err)
	}
	return t, nil
}
