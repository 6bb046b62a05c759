package promote

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
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
