package nametable

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"time"

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
//	magic | uint32 len(version) | version | int64 pushed (Unix ns, 0 unknown) | uint32 len(table) | table (binary proto) | uint32 CRC-32C of all before
//
// storeMagicV1 files (written before the push time was kept) lack the
// pushed field; Load reads them too.
var (
	storeMagic   = []byte("onramp-nametable/2\n")
	storeMagicV1 = []byte("onramp-nametable/1\n")
)

// maxStored bounds what Load reads, against a runaway file.
const maxStored = 1 << 30

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Store keeps the last good name table on disk so that DNS answers at boot
// before istiod is reachable.
type Store struct {
	// Dir holds the file; DefaultStoreDir when empty.
	Dir string
}

// Stored is a table as the store keeps it.
type Stored struct {
	Table *ndspb.NameTable
	// Version is the table's ADS version_info.
	Version string
	// Pushed is when the control plane pushed the table, so that status
	// can say so after a restart. For a file written before onramp kept
	// it, Load gives the file's modification time (when it was saved).
	Pushed time.Time
}

// Path returns the file the store reads and writes.
func (s *Store) Path() string {
	d := s.Dir
	if d == "" {
		d = DefaultStoreDir
	}
	return filepath.Join(d, StoreFile)
}

// Save writes st atomically (temporary file, fsync, rename, fsync of the
// directory), mode 0644. The previous file stays intact if anything fails.
func (s *Store) Save(st Stored) error {
	path := s.Path()
	payload, err := proto.MarshalOptions{Deterministic: true}.Marshal(st.Table)
	if err != nil {
		return fmt.Errorf("nametable: encoding table for %s: %w", path, err)
	}
	var pushed int64
	if !st.Pushed.IsZero() {
		pushed = st.Pushed.UnixNano()
	}
	var b bytes.Buffer
	b.Grow(len(storeMagic) + 20 + len(st.Version) + len(payload))
	b.Write(storeMagic)
	b.Write(binary.BigEndian.AppendUint32(nil, uint32(len(st.Version))))
	b.WriteString(st.Version)
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(pushed)))
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

// Load reads the stored table. With no stored table the error wraps
// os.ErrNotExist. A damaged file returns an error saying so; the caller
// should log it and wait for istiod's next push, which overwrites it.
func (s *Store) Load() (Stored, error) {
	path := s.Path()
	f, err := os.Open(path)
	if err != nil {
		return Stored{}, fmt.Errorf("nametable: no stored table: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Stored{}, fmt.Errorf("nametable: reading stored table: %w", err)
	}
	if st.Size() > maxStored {
		return Stored{}, corrupt(path, fmt.Sprintf("it is %d bytes, more than any table", st.Size()))
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return Stored{}, fmt.Errorf("nametable: reading stored table %s: %w", path, err)
	}
	stored, err := decodeStored(path, data)
	if err == nil && stored.Pushed.IsZero() {
		stored.Pushed = st.ModTime()
	}
	return stored, err
}

func corrupt(path, why string) error {
	return fmt.Errorf("nametable: stored table %s is damaged (%s); ignoring it until istiod sends a new table, which replaces it", path, why)
}

func decodeStored(path string, data []byte) (Stored, error) {
	v1 := bytes.HasPrefix(data, storeMagicV1)
	if !v1 && !bytes.HasPrefix(data, storeMagic) {
		return Stored{}, corrupt(path, "it does not start with the onramp name table header")
	}
	fixed := 12 // the two lengths and the checksum
	if !v1 {
		fixed += 8
	}
	if len(data) < len(storeMagic)+fixed {
		return Stored{}, corrupt(path, "it is truncated")
	}
	body, sum := data[:len(data)-4], binary.BigEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return Stored{}, corrupt(path, "checksum mismatch: truncated or overwritten")
	}
	p := body[len(storeMagic):]
	vl := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(vl)+uint64(fixed-8) > uint64(len(p)) {
		return Stored{}, corrupt(path, "bad version length")
	}
	var st Stored
	st.Version = string(p[:vl])
	p = p[vl:]
	if !v1 {
		if ns := int64(binary.BigEndian.Uint64(p)); ns != 0 {
			st.Pushed = time.Unix(0, ns)
		}
		p = p[8:]
	}
	tl := binary.BigEndian.Uint32(p)
	p = p[4:]
	if uint64(tl) != uint64(len(p)) {
		return Stored{}, corrupt(path, "bad table length")
	}
	st.Table = new(ndspb.NameTable)
	if err := proto.Unmarshal(p, st.Table); err != nil {
		return Stored{}, corrupt(path, err.Error())
	}
	return st, nil
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
