package awsapi

import (
	"context"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Factory hands out configurations per account and region from one base
// configuration. Assumed roles and caller identities are cached, so a run
// over many regions assumes each account's role once and refreshes it in
// one place.
type Factory struct {
	Base        aws.Config
	SessionName string
	Masker      Masker

	mu       sync.Mutex
	chained  map[string]aws.Config // by role ARN
	accounts map[string]string     // role ARN ("" for base) -> account id
}

// Config returns the configuration for accountID in region, and the account
// id it resolves to. With roleARN the role is assumed from the base
// credentials (role chaining); without it the base credentials must belong
// to accountID (or accountID is empty: "the credentials' own account").
func (f *Factory) Config(ctx context.Context, accountID, roleARN, region string) (aws.Config, string, error) {
	f.mu.Lock()
	if f.chained == nil {
		f.chained, f.accounts = map[string]aws.Config{}, map[string]string{}
	}
	cfg := f.Base
	if roleARN != "" {
		c, ok := f.chained[roleARN]
		if !ok {
			c = AssumeRole(f.Base, roleARN, f.SessionName, f.Masker)
			f.chained[roleARN] = c
		}
		cfg = c
	}
	account, known := f.accounts[roleARN]
	f.mu.Unlock()

	if !known {
		id, err := CallerIdentity(ctx, cfg, f.Masker)
		if err != nil {
			if roleARN != "" {
				return aws.Config{}, "", fmt.Errorf("assuming %s: %w", roleARN, err)
			}
			return aws.Config{}, "", err
		}
		account = id.Account
		f.mu.Lock()
		f.accounts[roleARN] = account
		f.mu.Unlock()
	}
	if accountID != "" && account != accountID {
		if roleARN == "" {
			return aws.Config{}, "", fmt.Errorf("account %s has no roleArn, and the credentials in use belong to account %s: add roleArn for it in the policy", accountID, account)
		}
		return aws.Config{}, "", fmt.Errorf("role %s belongs to account %s, not %s: fix the policy's accounts entry", roleARN, account, accountID)
	}
	cfg = cfg.Copy()
	cfg.Region = region
	return cfg, account, nil
}
