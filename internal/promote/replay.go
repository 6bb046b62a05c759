package promote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.yaml.in/yaml/v3"

	"github.com/patchgate/patchgate/internal/baseline"
	"github.com/patchgate/patchgate/internal/policy"
)

// Replay mechanisms.
const (
	// MechanismOverrideList: AWS-RunPatchBaseline's InstallOverrideList, a
	// YAML list in S3 of exactly the source's patches (Windows by KB id,
	// Linux by name.arch and title, which pins the version).
	MechanismOverrideList = "InstallOverrideList"
	// MechanismApprovalCutoff: no exact list for this system; a
	// BaselineOverride (the policy's baseline in S3) approves only patches
	// released before the source phase started.
	MechanismApprovalCutoff = "ApprovalCutoff"
	// MechanismNothing: the source phase installed nothing on this system,
	// so the promoted phase must send no Install for it (an empty list
	// would be an untested corner of AWS-RunPatchBaseline).
	MechanismNothing = "Nothing"
)

// Replay is how one operating system's patch set is replayed.
type Replay struct {
	OS        string
	Mechanism string
	// Parameter and URL are the AWS-RunPatchBaseline parameter to set and
	// its value: InstallOverrideList (https path-style URL) or
	// BaselineOverride (s3:// URL). Empty for MechanismNothing.
	Parameter string
	URL       string
	// Patches is how many patches the source installed on the system.
	Patches int
	// Exact is false for the approval cutoff: the plan and report must say
	// the replay is not patch by patch.
	Exact bool
	// Cutoff is the last release date the cutoff approves (UTC midnight of
	// that date), for MechanismApprovalCutoff.
	Cutoff time.Time
	// Note says, for the plan and the report, what the mechanism does here.
	Note string
}

// exact reports whether AWS-RunPatchBaseline's InstallOverrideList can
// replay an operating system's patch set exactly: patchgate does not
// replay macOS updates patch by patch.
func exact(os string) bool { return os != "MACOS" }

// OverrideList prepares the replay of src, the record a phase of p is
// promoted from, for the policy's operating system and any other system in
// the record: for a system that can be replayed exactly, the
// InstallOverrideList YAML ({patches: [{id, title}]}); for one that cannot,
// a BaselineOverride holding p's baseline with every rule cut off before
// src started (never later than the rule's own approveUntilDate or
// approval delay allowed then); for a system src installed nothing on,
// MechanismNothing. Files are created only if absent; an existing one must
// hold the same bytes. Instances of the promoted phase read them, so the
// bucket policy must let their instance roles s3:GetObject the
// override-lists/ prefix.
func (s *Store) OverrideList(ctx context.Context, src *Record, p *policy.Policy) ([]Replay, error) {
	if src.Policy != p.Metadata.Name {
		return nil, fmt.Errorf("replay: record %s/%s is of policy %s, not %s", src.Policy, src.Phase, src.Policy, p.Metadata.Name)
	}
	sets := map[string][]Patch{p.Spec.OperatingSystem: nil}
	for _, set := range src.Patches {
		sets[set.OS] = append(sets[set.OS], set.Patches...)
	}
	oses := make([]string, 0, len(sets))
	for os := range sets {
		oses = append(oses, os)
	}
	sort.Strings(oses)
	dir := path.Join(s.Prefix, "override-lists", src.Policy, src.Phase, strings.TrimPrefix(src.Digest, "sha256:"), fmt.Sprintf("%010d", src.Seq))
	var out []Replay
	for _, os := range oses {
		patches := sets[os]
		switch {
		case !exact(os):
			r, err := s.cutoff(ctx, src, p, os, dir)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		case len(patches) == 0:
			out = append(out, Replay{OS: os, Mechanism: MechanismNothing, Exact: true,
				Note: fmt.Sprintf("%s: %s installed nothing, so nothing is sent", os, src.Phase)})
		default:
			r, err := s.installList(ctx, src, os, patches, dir)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *Store) installList(ctx context.Context, src *Record, os string, patches []Patch, dir string) (Replay, error) {
	type entry struct {
		ID    string `yaml:"id"`
		Title string `yaml:"title,omitempty"`
	}
	var doc struct {
		Patches []entry `yaml:"patches"`
	}
	for _, p := range patches {
		// On Windows the KB id alone names the update; on Linux the title
		// pins the version installed.
		e := entry{ID: p.ID}
		if os != "WINDOWS" {
			e.Title = p.Title
		}
		doc.Patches = append(doc.Patches, e)
	}
	data, err := yaml.Marshal(&doc)
	if err != nil {
		return Replay{}, fmt.Errorf("override list for %s: %w", os, err)
	}
	key := path.Join(dir, strings.ToLower(os)+".yaml")
	if err := s.putOnce(ctx, key, data, "application/yaml"); err != nil {
		return Replay{}, err
	}
	kind := "Linux packages by name.arch and exact version (title)"
	if os == "WINDOWS" {
		kind = "Windows updates by KB id"
	}
	return Replay{OS: os, Mechanism: MechanismOverrideList, Parameter: "InstallOverrideList", Exact: true, Patches: len(patches),
		URL:  fmt.Sprintf("https://s3.%s.amazonaws.com/%s/%s", s.Region, s.Bucket, key),
		Note: fmt.Sprintf("%s: exactly the %d patches %s installed (%s), via InstallOverrideList", os, len(patches), src.Phase, kind)}, nil
}

// cutoff writes a BaselineOverride of p's baseline whose rules approve only
// patches released before src started: a rule with an approval delay of N
// days approved, when src ran, patches released N days before it; the
// cutoff is the day before that (ApproveUntilDate takes whole days), so
// the promoted phase approves at most what the source approved.
func (s *Store) cutoff(ctx context.Context, src *Record, p *policy.Policy, os, dir string) (Replay, error) {
	if os != p.Spec.OperatingSystem {
		return Replay{}, fmt.Errorf("replay: %s has no baseline in policy %s (its operatingSystem is %s)", os, p.Metadata.Name, p.Spec.OperatingSystem)
	}
	day := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	d := baseline.Desired(p)
	type filter struct {
		Key    string
		Values []string
	}
	type rule struct {
		PatchFilterGroup  struct{ PatchFilters []filter }
		ComplianceLevel   string
		ApproveUntilDate  string
		EnableNonSecurity bool
	}
	type override struct {
		OperatingSystem       string
		ApprovalRules         struct{ PatchRules []rule }
		ApprovedPatches       []string
		RejectedPatches       []string
		RejectedPatchesAction string
	}
	o := override{OperatingSystem: os, ApprovedPatches: append([]string{}, d.ApprovedPatches...), RejectedPatches: append([]string{}, d.RejectedPatches...),
		RejectedPatchesAction: d.RejectedPatchesAction}
	started := day(src.Started.UTC())
	latest := time.Time{}
	for _, r := range d.Rules {
		until := started.AddDate(0, 0, -1)
		if r.ApproveAfterDays != nil {
			until = started.AddDate(0, 0, -1-int(aws.ToInt32(r.ApproveAfterDays)))
		}
		if r.ApproveUntilDate != "" {
			if own, err := time.Parse("2006-01-02", r.ApproveUntilDate); err == nil && own.Before(until) {
				until = own
			}
		}
		if until.After(latest) {
			latest = until
		}
		nr := rule{ComplianceLevel: r.ComplianceLevel, ApproveUntilDate: until.Format("2006-01-02"), EnableNonSecurity: r.EnableNonSecurity}
		keys := make([]string, 0, len(r.Filters))
		for k := range r.Filters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		nr.PatchFilterGroup.PatchFilters = []filter{}
		for _, k := range keys {
			nr.PatchFilterGroup.PatchFilters = append(nr.PatchFilterGroup.PatchFilters, filter{Key: k, Values: r.Filters[k]})
		}
		o.ApprovalRules.PatchRules = append(o.ApprovalRules.PatchRules, nr)
	}
	data, err := json.MarshalIndent([]override{o}, "", "  ")
	if err != nil {
		return Replay{}, fmt.Errorf("baseline override for %s: %w", os, err)
	}
	key := path.Join(dir, strings.ToLower(os)+"-baseline.json")
	if err := s.putOnce(ctx, key, data, "application/json"); err != nil {
		return Replay{}, err
	}
	return Replay{OS: os, Mechanism: MechanismApprovalCutoff, Parameter: "BaselineOverride", URL: "s3://" + s.Bucket + "/" + key, Cutoff: latest,
		Patches: len(src.Patches), Note: fmt.Sprintf("%s cannot be replayed patch by patch: a BaselineOverride approves only patches released by %s, before %s started",
			os, latest.Format("2006-01-02"), src.Phase)}, nil
}

// putOnce creates key with data unless it exists with the same bytes.
func (s *Store) putOnce(ctx context.Context, key string, data []byte, contentType string) error {
	_, err := s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(data), IfNoneMatch: aws.String("*"), ContentType: &contentType})
	switch code(err) {
	case "":
		return nil
	case "PreconditionFailed":
		old, gerr := s.get(ctx, key)
		if gerr != nil {
			return gerr
		}
		if !bytes.Equal(old, data) {
			return &CorruptError{Key: s.s3URL(key), Reason: "a replay file already exists there with other content"}
		}
		return nil
	}
	return s.wrap("s3:PutObject", s.s3URL(key), err)
}
