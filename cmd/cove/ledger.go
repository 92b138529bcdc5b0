package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/covedata/cove"
	"github.com/covedata/cove/ledger"
	"github.com/covedata/cove/store"
)

const ledgerUsage = `  cove ledger verify (-data-dir DIR | -file EXPORT) [-key VKEY_FILE] [-checkpoint FILE]
  cove ledger export -data-dir DIR
  cove ledger checkpoint -data-dir DIR
  cove ledger key -data-dir DIR
  cove ledger prove -data-dir DIR (-seq N | -from CHECKPOINT_FILE) [-checkpoint FILE]
  cove ledger verify-proof -proof FILE -key VKEY_FILE [-checkpoint FILE]
  (each -data-dir command takes -ledger-key FILE if the signer key is not DIR/ledger.key)
`

// exportFormat names the first line of an export.
const exportFormat = "cove-ledger-export/1"

// exportHeader is the first line of an export; entries follow, one per line.
type exportHeader struct {
	Format      string `json:"format"`
	VerifierKey string `json:"verifier_key"`
	Checkpoint  string `json:"checkpoint"` // the latest signed note
}

// Limits on files a verifier reads.
const (
	maxLine      = 16 << 20
	maxProofFile = 1 << 20
)

func ledgerCmd(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("ledger: which subcommand?\n" + ledgerUsage)
	}
	sub := args[0]
	fs := flag.NewFlagSet("ledger "+sub, flag.ContinueOnError)
	dir := fs.String("data-dir", "", "Cove data directory")
	signerKey := fs.String("ledger-key", "", "the ledger's signer key file (default DIR/"+store.DefaultLedgerKeyFile+")")
	file := fs.String("file", "", "an exported ledger (cove ledger export)")
	keyFile := fs.String("key", "", "file holding the log's verifier key, obtained from a source you trust")
	cpFile := fs.String("checkpoint", "", "a signed checkpoint you kept earlier")
	seq := fs.Uint64("seq", 0, "entry to prove")
	from := fs.String("from", "", "older checkpoint to prove consistency from")
	proofFile := fs.String("proof", "", "a proof written by cove ledger prove")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", cove.ErrInvalid, fs.Arg(0))
	}
	open := func() (*store.Store, error) { return openLedger(ctx, *dir, *signerKey) }
	switch sub {
	case "verify":
		if *file != "" {
			f, err := os.Open(*file)
			if err != nil {
				return err
			}
			defer f.Close()
			return verifyExport(f, *keyFile, *cpFile, out)
		}
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		return verifyStore(ctx, st, *keyFile, *cpFile, out)
	case "export":
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		return export(ctx, st, out)
	case "checkpoint":
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		cp, err := st.Checkpoint(ctx)
		if err != nil {
			return err
		}
		_, err = out.Write(cp.Note)
		return err
	case "key":
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		_, err = fmt.Fprintln(out, st.VerifierKey())
		return err
	case "prove":
		st, err := open()
		if err != nil {
			return err
		}
		defer st.Close()
		return prove(ctx, st, *seq, *from, *cpFile, out)
	case "verify-proof":
		return verifyProof(*proofFile, *keyFile, *cpFile, out)
	}
	return fmt.Errorf("ledger: unknown subcommand %q\n%s", sub, ledgerUsage)
}

// openLedger opens an existing data directory's state.
func openLedger(ctx context.Context, dir, signerKey string) (*store.Store, error) {
	if signerKey == "" {
		return openStore(ctx, dir)
	}
	path := filepath.Join(dir, "cove.db")
	if _, err := os.Stat(path); dir == "" || err != nil {
		return nil, fmt.Errorf("%w: no Cove state in %q", cove.ErrNotFound, dir)
	}
	return store.Open(ctx, path, store.WithLedgerKey(signerKey))
}

// readKey reads a verifier key from a file.
func readKey(path string) (note.Verifier, string, error) {
	b, err := readSmall(path)
	if err != nil {
		return nil, "", err
	}
	vkey := strings.TrimSpace(string(b))
	v, err := ledger.NewVerifier(vkey)
	return v, vkey, err
}

func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxProofFile+1))
	if err == nil && len(b) > maxProofFile {
		err = fmt.Errorf("%w: %s is over %d bytes", cove.ErrLimit, path, maxProofFile)
	}
	return b, err
}

// verifyStore verifies a data directory's ledger: entries, stored tree
// hashes and checkpoints (VerifyLedger), then the key and a kept checkpoint.
func verifyStore(ctx context.Context, st *store.Store, keyFile, cpFile string, out io.Writer) error {
	v := st.Verifier()
	if keyFile != "" {
		given, vkey, err := readKey(keyFile)
		if err != nil {
			return err
		}
		if vkey != st.VerifierKey() {
			return fmt.Errorf("%w: the log is signed by %s, not by the key in %s", cove.ErrLedger, st.VerifierKey(), keyFile)
		}
		v = given
	}
	log, err := st.VerifyLedger(ctx)
	if err != nil {
		return err
	}
	cps, err := st.Checkpoints(ctx)
	if err != nil {
		return err
	}
	return ledgerReport(log, cps, v, keyFile == "", cpFile, out)
}

// verifyExport verifies an export file: every entry, the checkpoint in it,
// and a kept checkpoint, with the given key or else the file's own.
func verifyExport(r io.Reader, keyFile, cpFile string, out io.Writer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	if !sc.Scan() {
		return fmt.Errorf("%w: empty export: %v", cove.ErrLedger, sc.Err())
	}
	var h exportHeader
	if err := strictJSON(sc.Bytes(), &h); err != nil || h.Format != exportFormat {
		return fmt.Errorf("%w: line 1 is not a %s header", cove.ErrLedger, exportFormat)
	}
	var v note.Verifier
	var err error
	if keyFile != "" {
		v, _, err = readKey(keyFile)
	} else {
		v, err = ledger.NewVerifier(h.VerifierKey)
	}
	if err != nil {
		return err
	}
	log, err := ledger.Verify(readJSONL(sc, 1))
	if err != nil {
		return err
	}
	var cps []ledger.Checkpoint
	if h.Checkpoint != "" {
		cp, err := ledger.OpenCheckpoint([]byte(h.Checkpoint), v)
		if err != nil {
			return fmt.Errorf("export's %w", err)
		}
		if err := log.Check(cp.Head); err != nil {
			return fmt.Errorf("export's checkpoint %d: %w", cp.Size, err)
		}
		cps = append(cps, cp)
	}
	return ledgerReport(log, cps, v, keyFile == "", cpFile, out)
}

// ledgerReport checks a kept checkpoint against a verified log and its latest
// stored checkpoint, and prints what was verified.
func ledgerReport(log *ledger.Log, cps []ledger.Checkpoint, v note.Verifier, ownKey bool, cpFile string, out io.Writer) error {
	head := log.Head()
	fmt.Fprintf(out, "ledger verified: %d entries, tree head %s\n", head.Size, head.Hash)
	if len(cps) == 0 {
		fmt.Fprintln(out, "no signed checkpoint: nothing binds these entries yet (cove ledger checkpoint)")
	} else {
		latest := cps[len(cps)-1]
		fmt.Fprintf(out, "checkpoints: %d verified, signed by %s; latest covers %d entries, %d after it\n",
			len(cps), v.Name(), latest.Size, head.Size-latest.Size)
	}
	if ownKey {
		fmt.Fprintln(out, "warning: checked with the log's own key; pass -key with the key published for this log")
	}
	if cpFile == "" {
		return nil
	}
	msg, err := readSmall(cpFile)
	if err != nil {
		return err
	}
	kept, err := ledger.OpenCheckpoint(msg, v)
	if err != nil {
		return fmt.Errorf("kept %w", err)
	}
	if err := log.Check(kept.Head); err != nil {
		return fmt.Errorf("kept checkpoint %d: %w", kept.Size, err)
	}
	newest := ledger.Checkpoint{Head: head}
	if len(cps) > 0 && cps[len(cps)-1].Size >= kept.Size {
		newest = cps[len(cps)-1]
	}
	proof, err := log.ProveConsistency(kept.Size, newest.Size)
	if err != nil {
		return err
	}
	if err := ledger.CheckConsistency(proof, kept.Head, newest.Head); err != nil {
		return err
	}
	fmt.Fprintf(out, "kept checkpoint %d: contained in this log; consistency proof %d -> %d checked\n", kept.Size, kept.Size, newest.Size)
	return nil
}

// export writes a header (format, verifier key, a checkpoint of the current
// head, signed first if the log grew since the last) and every entry.
func export(ctx context.Context, st *store.Store, out io.Writer) error {
	cp, err := st.Checkpoint(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	if err := enc.Encode(exportHeader{Format: exportFormat, VerifierKey: st.VerifierKey(), Checkpoint: string(cp.Note)}); err != nil {
		return err
	}
	for e, err := range st.Entries(ctx) {
		if err != nil {
			return err
		}
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

// prove writes an inclusion proof (seq) or a consistency proof (from) as
// JSON, against the checkpoint in cpFile or else the latest one, signed now
// if the latest does not cover what is asked.
func prove(ctx context.Context, st *store.Store, seq uint64, from, cpFile string, out io.Writer) error {
	if (seq == 0) == (from == "") {
		return fmt.Errorf("%w: give -seq N or -from CHECKPOINT_FILE", cove.ErrInvalid)
	}
	openFile := func(path string) (ledger.Checkpoint, error) {
		msg, err := readSmall(path)
		if err != nil {
			return ledger.Checkpoint{}, err
		}
		return ledger.OpenCheckpoint(msg, st.Verifier())
	}
	var older ledger.Checkpoint
	need := seq
	if from != "" {
		var err error
		if older, err = openFile(from); err != nil {
			return fmt.Errorf("-from %w", err)
		}
		need = older.Size
	}
	var cp ledger.Checkpoint
	var err error
	switch {
	case cpFile != "":
		cp, err = openFile(cpFile)
	default:
		cp, err = st.LatestCheckpoint(ctx)
		if errors.Is(err, cove.ErrNotFound) || err == nil && cp.Size < need {
			cp, err = st.Checkpoint(ctx)
		}
	}
	if err != nil {
		return err
	}
	var v any
	if from != "" {
		v, err = st.ProveConsistency(ctx, older, cp)
	} else {
		v, err = st.ProveEntry(ctx, seq, cp)
	}
	if err != nil {
		return err
	}
	// Not indented: that would re-indent the entry's body, whose exact bytes are hashed.
	return json.NewEncoder(out).Encode(v)
}

// proofFile is either proof: inclusion (entry, checkpoint, proof) or
// consistency (old, new, proof).
type proofFile struct {
	Entry      *ledger.Entry     `json:"entry"`
	Checkpoint string            `json:"checkpoint"`
	Old        string            `json:"old"`
	New        string            `json:"new"`
	Proof      []json.RawMessage `json:"proof"`
}

// verifyProof checks a proof offline with the verifier key, optionally
// against a checkpoint the verifier kept rather than the proof's own.
func verifyProof(path, keyFile, cpFile string, out io.Writer) error {
	if path == "" || keyFile == "" {
		return fmt.Errorf("%w: give -proof FILE and -key VKEY_FILE", cove.ErrInvalid)
	}
	v, _, err := readKey(keyFile)
	if err != nil {
		return err
	}
	b, err := readSmall(path)
	if err != nil {
		return err
	}
	var kept *ledger.Checkpoint
	if cpFile != "" {
		msg, err := readSmall(cpFile)
		if err != nil {
			return err
		}
		cp, err := ledger.OpenCheckpoint(msg, v)
		if err != nil {
			return fmt.Errorf("kept %w", err)
		}
		kept = &cp
	}
	var shape proofFile
	if err := strictJSON(b, &shape); err != nil {
		return fmt.Errorf("%w: %s: %v", cove.ErrInvalid, path, err)
	}
	if shape.Entry != nil {
		var p ledger.InclusionProof
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("%w: %s: %v", cove.ErrInvalid, path, err)
		}
		var h ledger.Head
		if kept != nil {
			h, err = kept.Head, p.VerifyAgainst(kept.Head)
		} else {
			h, err = p.Verify(v)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "inclusion proof verified: entry %d (%s %s) is in the tree of %d entries signed by %s\n",
			p.Entry.Seq, p.Entry.Kind, p.Entry.Subject, h.Size, v.Name())
		return nil
	}
	var p ledger.ConsistencyProof
	if err := json.Unmarshal(b, &p); err != nil || p.Old == "" {
		return fmt.Errorf("%w: %s is neither an inclusion nor a consistency proof", cove.ErrInvalid, path)
	}
	older, newer, err := p.Verify(v)
	if err != nil {
		return err
	}
	if kept != nil && older != kept.Head {
		return fmt.Errorf("%w: the proof starts from checkpoint %d, not the kept checkpoint %d", cove.ErrLedger, older.Size, kept.Size)
	}
	fmt.Fprintf(out, "consistency proof verified: the tree of %d entries extends the tree of %d, both signed by %s\n", newer.Size, older.Size, v.Name())
	return nil
}

func strictJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// readJSONL reads the entries of an export, one per line, after the lines
// already read; each line is bounded (maxLine) so a hostile file cannot
// exhaust memory.
func readJSONL(sc *bufio.Scanner, line int) iter.Seq2[ledger.Entry, error] {
	return func(yield func(ledger.Entry, error) bool) {
		for sc.Scan() {
			line++
			var e ledger.Entry
			if err := strictJSON(sc.Bytes(), &e); err != nil {
				yield(e, fmt.Errorf("line %d: %v", line, err))
				return
			}
			if !yield(e, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(ledger.Entry{}, fmt.Errorf("line %d: %v", line+1, err))
		}
	}
}
