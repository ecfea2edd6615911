package incident

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/cordonhq/cordon/internal/jcs"
	"github.com/cordonhq/cordon/internal/recordauth"
)

// An evidence bundle is a directory written once: the files collected
// for an incident, manifest.json naming each with its SHA-256 and size,
// and manifest.sig, detection's Ed25519 signature over the manifest's
// canonical bytes (RFC 8785) as a record signature of kind ManifestKind
// keyed by the incident id. The sealed event on cordon.incidents records
// the manifest's hash, so a bundle replaced whole (even re-signed by a
// stolen key) does not match the history.

// Names of a bundle's own files, and the signature's record kind.
const (
	ManifestFile  = "manifest.json"
	SignatureFile = "manifest.sig"
	ManifestKind  = "evidence_manifest"
)

// File is one file of a bundle.
type File struct {
	Name string
	Data []byte
}

// Manifest lists a bundle's files.
type Manifest struct {
	V        int         `json:"v"`
	Incident string      `json:"incident"`
	Created  time.Time   `json:"created"`
	Files    []FileEntry `json:"files"`
	// Sources say where each part came from (topic offsets, ClickHouse,
	// the nodes), for whoever reads the bundle later.
	Sources map[string]string `json:"sources,omitempty"`
}

// FileEntry is one file's name, size and SHA-256.
type FileEntry struct {
	Name   string `json:"name"`
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
}

var fileName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,99}$`)

// Write writes a bundle into dir, which must not exist (nothing is ever
// overwritten: a second bundle of an incident is a new directory), signs
// its manifest with signer (detection's key) and returns its seal.
// Files are read-only once written.
func Write(dir string, m Manifest, files []File, signer *recordauth.Signer) (Seal, error) {
	if signer == nil {
		return Seal{}, errors.New("evidence: no signing key (detection's record key, record_auth.keys.detect)")
	}
	if signer.Role() != recordauth.Detect {
		return Seal{}, fmt.Errorf("evidence: the signing key is %s's, want detect's", signer.Role())
	}
	seen := map[string]bool{ManifestFile: true, SignatureFile: true}
	m.Files = nil
	for _, f := range files {
		if !fileName.MatchString(f.Name) || seen[f.Name] {
			return Seal{}, fmt.Errorf("evidence: file name %q: want a unique name of lower-case letters, digits, '.', '_' and '-'", f.Name)
		}
		seen[f.Name] = true
		sum := sha256.Sum256(f.Data)
		m.Files = append(m.Files, FileEntry{Name: f.Name, Size: len(f.Data), SHA256: hex.EncodeToString(sum[:])})
	}
	slices.SortFunc(m.Files, func(a, b FileEntry) int { return strings.Compare(a.Name, b.Name) })
	raw, err := jcs.Marshal(&m)
	if err != nil {
		return Seal{}, fmt.Errorf("evidence: manifest: %w", err)
	}
	sig := signer.Sign(ManifestKind, []byte(m.Incident), raw)
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return Seal{}, fmt.Errorf("evidence: %w", err)
	}
	if err := os.Mkdir(dir, 0o750); err != nil {
		if errors.Is(err, os.ErrExist) {
			return Seal{}, fmt.Errorf("evidence: %s exists: a bundle is written once, choose another directory", dir)
		}
		return Seal{}, fmt.Errorf("evidence: %w", err)
	}
	for _, f := range append(files, File{ManifestFile, raw}, File{SignatureFile, append(sig, '\n')}) {
		if err := writeOnce(filepath.Join(dir, f.Name), f.Data); err != nil {
			return Seal{}, err
		}
	}
	if err := syncDir(dir); err != nil {
		return Seal{}, err
	}
	sum := sha256.Sum256(raw)
	return Seal{Manifest: hex.EncodeToString(sum[:]), Files: len(m.Files), Key: signer.ID(), Path: dir}, nil
}

func writeOnce(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o440)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("evidence: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("evidence: sync %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("evidence: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("evidence: sync %s: %w", dir, err)
	}
	return nil
}

// Report is what Verify found.
type Report struct {
	Incident string `json:"incident"`
	// Manifest is the manifest's SHA-256 (to compare with the sealed
	// event on the topic).
	Manifest string `json:"manifest_sha256"`
	Files    int    `json:"files"`
	// SignedAt is the signature's time (Unix nanoseconds).
	SignedAt int64 `json:"signed_at,omitzero"`
	// Problems name each file changed, missing or added, and a bad
	// signature; none: the bundle is as it was sealed.
	Problems []string `json:"problems,omitempty"`
}

// maxFile bounds what Verify reads of a file.
const maxFile = 1 << 30

// Verify checks the bundle in dir against its manifest and the manifest's
// signature against keys (the trusted detection keys). The error is for
// a bundle that cannot be read at all; a readable one with changes has
// them in the report's Problems.
func Verify(dir string, keys *recordauth.Keyring) (Report, error) {
	var r Report
	raw, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return r, fmt.Errorf("evidence: %w", err)
	}
	sum := sha256.Sum256(raw)
	r.Manifest = hex.EncodeToString(sum[:])
	var m Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return r, fmt.Errorf("evidence: %s: %w", ManifestFile, err)
	}
	r.Incident, r.Files = m.Incident, len(m.Files)
	sig, err := os.ReadFile(filepath.Join(dir, SignatureFile))
	switch {
	case err != nil:
		r.Problems = append(r.Problems, fmt.Sprintf("%s: %v", SignatureFile, err))
	default:
		at, err := keys.Verify(recordauth.Detect, ManifestKind, []byte(m.Incident), raw, []byte(strings.TrimSpace(string(sig))))
		if err != nil {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: the manifest's signature does not verify: %v", SignatureFile, err))
		}
		r.SignedAt = at
	}
	if canon, err := jcs.Transform(raw); err != nil || string(canon) != string(raw) {
		r.Problems = append(r.Problems, ManifestFile+": not in its canonical form (edited)")
	}
	listed := map[string]bool{ManifestFile: true, SignatureFile: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		if !fileName.MatchString(f.Name) {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: names a file %q outside the bundle's names", ManifestFile, f.Name))
			continue
		}
		got, size, err := hashFile(filepath.Join(dir, f.Name))
		switch {
		case errors.Is(err, os.ErrNotExist):
			r.Problems = append(r.Problems, f.Name+": missing")
		case err != nil:
			r.Problems = append(r.Problems, fmt.Sprintf("%s: %v", f.Name, err))
		case got != f.SHA256 || size != int64(f.Size):
			r.Problems = append(r.Problems, fmt.Sprintf("%s: changed (sha256 %s, %d bytes; sealed %s, %d bytes)", f.Name, got, size, f.SHA256, f.Size))
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return r, fmt.Errorf("evidence: %w", err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			r.Problems = append(r.Problems, e.Name()+": not in the manifest (added)")
		}
	}
	return r, nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return "", 0, fmt.Errorf("not a regular file")
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, maxFile))
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
