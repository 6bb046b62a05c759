// Package discover finds the managed instances a phase targets, read-only,
// for the rollout and for plan alike.
package discover

import (
	"context"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// Inventory is the one SSM call discovery makes.
type Inventory interface {
	DescribeInstanceInformation(ctx context.Context, in *ssm.DescribeInstanceInformationInput, optFns ...func(*ssm.Options)) (*ssm.DescribeInstanceInformationOutput, error)
}

// Instance is one managed instance from the inventory.
type Instance struct {
	ID       string
	Name     string
	Platform string
	Online   bool
	Ping     string
}

// Instances lists the instances a phase targets: by tags (all keys ANDed, as
// SSM's tag: filters are) or by instance ids. Ids SSM does not know come back
// as not Online, so a typo in instanceIds shows up as an offline instance.
func Instances(ctx context.Context, inv Inventory, tags map[string]string, ids []string) ([]Instance, error) {
	var filters []ssmtypes.InstanceInformationStringFilter
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		filters = append(filters, ssmtypes.InstanceInformationStringFilter{Key: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	seen := map[string]bool{}
	var out []Instance
	collect := func(fs []ssmtypes.InstanceInformationStringFilter) error {
		p := ssm.NewDescribeInstanceInformationPaginator(inv, &ssm.DescribeInstanceInformationInput{Filters: fs, MaxResults: aws.Int32(50)})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return fmt.Errorf("listing managed instances with ssm:DescribeInstanceInformation: %w", err)
			}
			for _, ii := range page.InstanceInformationList {
				id := aws.ToString(ii.InstanceId)
				if seen[id] {
					continue
				}
				seen[id] = true
				name := aws.ToString(ii.ComputerName)
				if n := aws.ToString(ii.Name); n != "" {
					name = n
				}
				out = append(out, Instance{ID: id, Name: name, Platform: aws.ToString(ii.PlatformName),
					Online: ii.PingStatus == ssmtypes.PingStatusOnline, Ping: string(ii.PingStatus)})
			}
		}
		return nil
	}
	if len(ids) > 0 {
		// The InstanceIds filter takes at most 50 values.
		for start := 0; start < len(ids); start += 50 {
			chunk := ids[start:min(start+50, len(ids))]
			if err := collect([]ssmtypes.InstanceInformationStringFilter{{Key: aws.String("InstanceIds"), Values: chunk}}); err != nil {
				return nil, err
			}
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				out = append(out, Instance{ID: id, Ping: "NotManaged"})
			}
		}
	} else if err := collect(filters); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
