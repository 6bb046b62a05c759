package promote

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	"go.yaml.in/yaml/v3"
	"golang.org/x/sync/errgroup"
)

// PatchesAPI is the SSM call PatchSet makes.
type PatchesAPI interface {
	DescribeInstancePatches(ctx context.Context, in *ssm.DescribeInstancePatchesInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstancePatchesOutput, error)
}

// Target is one instance a phase patched and its operating system (the
// policy's operatingSystem value).
type Target struct {
	InstanceID string
	OS         string
}

// patchSetConcurrency bounds the DescribeInstancePatches calls in flight:
// one account-region's instances share its SSM rate limit.
const patchSetConcurrency = 4

// PatchSet is the set of patches the phase installed on targets: each
// instance's patches in state Installed or InstalledPendingReboot whose
// InstalledTime is within [from, to], merged per operating system (one
// entry per patch id and title), sorted. Call it once per account-region
// with that account-region's client and merge the results with Merge.
func PatchSet(ctx context.Context, api PatchesAPI, targets []Target, from, to time.Time) ([]OSPatches, error) {
	var mu sync.Mutex
	byOS := map[string]map[string]Patch{}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(patchSetConcurrency)
	for _, t := range targets {
		g.Go(func() error {
			in := &ssm.DescribeInstancePatchesInput{InstanceId: aws.String(t.InstanceID), MaxResults: aws.Int32(100),
				Filters: []ssmtypes.PatchOrchestratorFilter{{Key: aws.String("State"), Values: []string{"Installed", "InstalledPendingReboot"}}}}
			for p := ssm.NewDescribeInstancePatchesPaginator(api, in); p.HasMorePages(); {
				page, err := p.NextPage(ctx)
				if err != nil {
					return fmt.Errorf("listing the patches installed on %s with ssm:DescribeInstancePatches: %w", t.InstanceID, err)
				}
				mu.Lock()
				for _, pc := range page.Patches {
					at := aws.ToTime(pc.InstalledTime)
					if at.IsZero() || at.Before(from) || at.After(to) {
						continue
					}
					pt := patchOf(t.OS, pc)
					if byOS[t.OS] == nil {
						byOS[t.OS] = map[string]Patch{}
					}
					byOS[t.OS][pt.ID+"\x00"+pt.Title] = pt
				}
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var sets []OSPatches
	for os, m := range byOS {
		sets = append(sets, OSPatches{OS: os, Patches: sorted(m)})
	}
	return Merge(sets), nil
}

func sorted(m map[string]Patch) []Patch {
	out := make([]Patch, 0, len(m))
	for _, p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].ID != out[j].ID {
			return out[i].ID < out[j].ID
		}
		return out[i].Title < out[j].Title
	})
	return out
}

// Merge joins patch sets (from several account-regions) per operating
// system, without duplicates, sorted.
func Merge(sets ...[]OSPatches) []OSPatches {
	byOS := map[string]map[string]Patch{}
	for _, set := range sets {
		for _, s := range set {
			if byOS[s.OS] == nil {
				byOS[s.OS] = map[string]Patch{}
			}
			for _, p := range s.Patches {
				byOS[s.OS][p.ID+"\x00"+p.Title] = p
			}
		}
	}
	out := make([]OSPatches, 0, len(byOS))
	for os, m := range byOS {
		out = append(out, OSPatches{OS: os, Patches: sorted(m)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OS < out[j].OS })
	return out
}

// patchOf reads one DescribeInstancePatches entry: on Windows the KBId is
// the KB number; on Linux it is name.arch and the title
// name.arch:epoch:version-release carries the version.
func patchOf(os string, pc ssmtypes.PatchComplianceData) Patch {
	p := Patch{ID: aws.ToString(pc.KBId), Title: aws.ToString(pc.Title), Classification: aws.ToString(pc.Classification), Severity: aws.ToString(pc.Severity)}
	if os == "WINDOWS" {
		p.KB, p.Name = p.ID, p.Title
		return p
	}
	p.Name = p.ID
	if v, ok := strings.CutPrefix(p.Title, p.ID+":"); ok {
		p.Version = v
	}
	return p
}

// Outside returns the patches of got that are not in want, per operating
// system: what a promoted phase installed beyond its source's set. A
// verified replay has none.
func Outside(want, got []OSPatches) []OSPatches {
	in := map[string]bool{}
	for _, s := range want {
		for _, p := range s.Patches {
			in[s.OS+"\x00"+p.ID+"\x00"+p.Title] = true
		}
	}
	var out []OSPatches
	for _, s := range got {
		var extra []Patch
		for _, p := range s.Patches {
			if !in[s.OS+"\x00"+p.ID+"\x00"+p.Title] {
				extra = append(extra, p)
			}
		}
		if len(extra) > 0 {
			out = append(out, OSPatches{OS: s.OS, Patches: extra})
		}
	}
	return out
}

// Replay mechanisms.
const (
	// InstallOverrideList: AWS-RunPatchBaseline installs exactly the
	// patches of a YAML list in S3 (Windows by KB id, Linux by name.arch
	// and title).
	MechanismOverrideList = "InstallOverrideList"
	// ApprovalCutoff: no exact list; the promoted phase's baseline approves
	// only patches released by the source phase's time.
	MechanismApprovalCutoff = "ApprovalCutoff"
)

// Replay is how one operating system's patch set is replayed.
type Replay struct {
	OS        string
	Mechanism string
	// URL is the InstallOverrideList parameter value (MechanismOverrideList).
	URL     string
	Patches int
	// Cutoff is the approval cutoff (MechanismApprovalCutoff): the source
	// phase's time.
	Cutoff time.Time
	// Note says, for the plan and the report, what the mechanism means here.
	Note string
}

// exact reports whether AWS-RunPatchBaseline's InstallOverrideList can
// replay an operating system's patch set exactly.
func exact(os string) bool { return os != "MACOS" }

// OverrideList writes, for each operating system of src's patch set that
// can be replayed exactly, the InstallOverrideList YAML
// ({patches: [{id, title}]}) to the store and returns its https
// path-style URL; for the others it returns the approval-cutoff fallback.
// Lists are created only if absent; an existing list must hold the same
// bytes. Instances of the promoted phase read the list, so the bucket
// policy must let their instance roles s3:GetObject the override-lists/
// prefix.
func (s *Store) OverrideList(ctx context.Context, src *Record) ([]Replay, error) {
	var out []Replay
	for _, set := range src.Patches {
		if !exact(set.OS) {
			out = append(out, Replay{OS: set.OS, Mechanism: MechanismApprovalCutoff, Cutoff: src.Time, Patches: len(set.Patches),
				Note: fmt.Sprintf("%s cannot be replayed patch by patch: the baseline approves only patches released by %s", set.OS, src.Time.UTC().Format(time.RFC3339))})
			continue
		}
		type entry struct {
			ID    string `yaml:"id"`
			Title string `yaml:"title,omitempty"`
		}
		var doc struct {
			Patches []entry `yaml:"patches"`
		}
		doc.Patches = []entry{}
		for _, p := range set.Patches {
			// On Windows the KB id alone names the update; on Linux the
			// title pins the version installed.
			e := entry{ID: p.ID}
			if set.OS != "WINDOWS" {
				e.Title = p.Title
			}
			doc.Patches = append(doc.Patches, e)
		}
		data, err := yaml.Marshal(&doc)
		if err != nil {
			return nil, fmt.Errorf("override list for %s: %w", set.OS, err)
		}
		key := path.Join(s.Prefix, "override-lists", src.Policy, src.Phase, strings.TrimPrefix(src.Digest, "sha256:"), fmt.Sprintf("%010d", src.Seq), strings.ToLower(set.OS)+".yaml")
		_, err = s.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: &s.Bucket, Key: &key, Body: bytes.NewReader(data), IfNoneMatch: aws.String("*"), ContentType: aws.String("application/yaml")})
		switch code(err) {
		case "":
		case "PreconditionFailed":
			old, gerr := s.get(ctx, key)
			if gerr != nil {
				return nil, gerr
			}
			if !bytes.Equal(old, data) {
				return nil, &CorruptError{Key: s.s3URL(key), Reason: "an override list already exists there with other patches"}
			}
		default:
			return nil, s.wrap("s3:PutObject", s.s3URL(key), err)
		}
		kind := "Linux packages by name.arch and exact version (title)"
		if set.OS == "WINDOWS" {
			kind = "Windows updates by KB id"
		}
		out = append(out, Replay{OS: set.OS, Mechanism: MechanismOverrideList, Patches: len(set.Patches),
			URL:  fmt.Sprintf("https://s3.%s.amazonaws.com/%s/%s", s.Region, s.Bucket, key),
			Note: fmt.Sprintf("%s: exactly the %d patches %s installed (%s), via InstallOverrideList", set.OS, len(set.Patches), src.Phase, kind)})
	}
	return out, nil
}
