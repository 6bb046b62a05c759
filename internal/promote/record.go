// Package promote keeps rings honest across runs: a durable, append-only
// record of each phase's verdict and the exact patch set it installed, in an
// S3 bucket (one JSON object a record, created only if absent) with each
// record's digest in Parameter Store; the pure rule deciding whether a
// later phase may be promoted from it; and the InstallOverrideList that
// replays its patch set exactly.
//
// It never sends a command: the rollout engine calls it before and after a
// phase. Interfaces are the few SDK calls it makes, declared here.
package promote

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/patchgate/patchgate/internal/policy"
)

// Schema identifies version 1 of the record format. A record with another
// schema is refused, never guessed at.
const Schema = "patchgate.dev/promotion-record/v1"

// Verdicts a record holds.
const (
	Passed = "passed"
	Failed = "failed"
)

// MaxRecordSize bounds what is read from the store: a record holds a patch
// list, not a fleet.
const MaxRecordSize = 4 << 20

// Record is one phase's outcome in one run.
type Record struct {
	Schema string `json:"schema"`
	Policy string `json:"policy"`
	Phase  string `json:"phase"`
	// Digest is the policy's content digest (Digest) when the phase ran.
	Digest string `json:"digest"`
	// Seq numbers the records of one policy, phase and digest from 1; the
	// store assigns it.
	Seq        int    `json:"seq"`
	Commit     string `json:"commit"`
	RunID      string `json:"runId"`
	RunURL     string `json:"runUrl"`
	SnapshotID string `json:"snapshotId"`
	// Started and Time bound the phase: Time is when its verdict was given,
	// the time a promotion's age counts from.
	Started time.Time `json:"started"`
	Time    time.Time `json:"time"`
	Verdict string    `json:"verdict"`
	// Reason says why a phase failed; empty when it passed.
	Reason string `json:"reason,omitempty"`
	// Patches are the patches the phase installed, per operating system.
	Patches []OSPatches `json:"patches"`
	// ReplayOf is the key of the record whose patch set this phase
	// replayed, when it was promoted with replay.
	ReplayOf string `json:"replayOf,omitempty"`
}

// OSPatches is the patch set installed on one operating system.
type OSPatches struct {
	// OS is the policy's operatingSystem value (WINDOWS, AMAZON_LINUX_2023, ...).
	OS      string  `json:"os"`
	Patches []Patch `json:"patches"`
}

// Patch is one installed patch, from DescribeInstancePatches.
type Patch struct {
	// ID is the KBId: name.arch on Linux, the KB number on Windows.
	ID string `json:"id"`
	// Title is as SSM reports it; on Linux name.arch:epoch:version-release.
	Title string `json:"title"`
	// Name and Version are the package and its version (Linux); on Windows
	// Name is the title and KB the KB number.
	Name           string `json:"name,omitempty"`
	Version        string `json:"version,omitempty"`
	KB             string `json:"kb,omitempty"`
	Classification string `json:"classification,omitempty"`
	Severity       string `json:"severity,omitempty"`
}

// check is the record's own consistency, before it is written or after it
// is read.
func (r *Record) check() error {
	switch {
	case r.Schema != Schema:
		return fmt.Errorf("schema %q is not %q", r.Schema, Schema)
	case r.Policy == "" || r.Phase == "" || r.Digest == "":
		return errors.New("policy, phase and digest are required")
	case r.Verdict != Passed && r.Verdict != Failed:
		return fmt.Errorf("verdict %q is neither %q nor %q", r.Verdict, Passed, Failed)
	case r.Time.IsZero():
		return errors.New("time is required")
	case r.Started.After(r.Time):
		return errors.New("the phase started after its verdict")
	case r.Seq < 1:
		return fmt.Errorf("seq %d must be at least 1", r.Seq)
	}
	// Records end up in logs, step summaries and comments: no field may
	// carry control characters (a \r can hide a workflow command).
	fields := map[string]string{"policy": r.Policy, "phase": r.Phase, "digest": r.Digest, "commit": r.Commit, "runId": r.RunID,
		"runUrl": r.RunURL, "snapshotId": r.SnapshotID, "replayOf": r.ReplayOf, "reason": strings.ReplaceAll(r.Reason, "\n", " ")}
	if err := noControl("", fields); err != nil {
		return err
	}
	for _, set := range r.Patches {
		if err := noControl("", map[string]string{"os": set.OS}); err != nil {
			return err
		}
		for _, p := range set.Patches {
			if err := noControl(fmt.Sprintf("patch %q of %s: ", p.ID, set.OS), map[string]string{"id": p.ID, "title": p.Title, "name": p.Name,
				"version": p.Version, "kb": p.KB, "classification": p.Classification, "severity": p.Severity}); err != nil {
				return err
			}
		}
	}
	return nil
}

func noControl(where string, fields map[string]string) error {
	for name, v := range fields {
		if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
			return fmt.Errorf("%s%s has a control character at byte %d", where, name, i)
		}
	}
	return nil
}

// Decode reads one record strictly: a single JSON object of known fields in
// the current schema; anything else is refused.
func Decode(data []byte) (*Record, error) {
	if len(data) > MaxRecordSize {
		return nil, fmt.Errorf("record is larger than %d bytes", MaxRecordSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("record is not valid JSON of schema %s: %w", Schema, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("record has data after its JSON object")
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return &r, nil
}

// Encode writes the record as the store keeps it.
func (r *Record) Encode() ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	return json.MarshalIndent(r, "", "  ")
}

// digestDomain separates policy digests from any other SHA-256 of the same
// bytes, and versions the recipe.
const digestDomain = "patchgate policy content v1\n"

// Digest is the content digest of a policy: "sha256:" and the hex SHA-256
// of digestDomain followed by the policy's JSON form (encoding/json of
// policy.Policy: fields in declaration order, map keys sorted, durations as
// strings) with defaults applied and metadata.description and
// metadata.owners left out, since they do not change what is patched. The
// same policy gives the same digest on every machine; any change to what
// it patches, where or how gives another.
func Digest(p *policy.Policy) (string, error) {
	// Defaults go on a copy of everything ApplyDefaults writes, so that p
	// is never written (it may be read concurrently).
	q := *p
	q.Spec.Phases = append([]policy.Phase(nil), p.Spec.Phases...)
	q.Spec.Baseline.ApprovalRules = append([]policy.ApprovalRule(nil), p.Spec.Baseline.ApprovalRules...)
	if p.Spec.Schedule != nil {
		sc := *p.Spec.Schedule
		q.Spec.Schedule = &sc
	}
	policy.ApplyDefaults(&q)
	q.Metadata.Description, q.Metadata.Owners = "", nil
	b, err := json.Marshal(&q)
	if err != nil {
		return "", fmt.Errorf("digest of policy %s: %w", p.Metadata.Name, err)
	}
	h := sha256.New()
	h.Write([]byte(digestDomain))
	h.Write(b)
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func sha(data []byte) string {
	s := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(s[:])
}
