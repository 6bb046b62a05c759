package policy

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Rings is spec.rings: how phases relate across the policy's account-regions
// and across runs.
type Rings struct {
	// Store is where promotion records live; required when any phase has
	// a promotion.
	Store *RingStore `yaml:"store" json:"store,omitempty"`
	// IndependentTargets opts out of the cross-account-region barrier: each
	// account-region moves through the phases on its own, as before rings.
	// Never the default.
	IndependentTargets bool `yaml:"independentTargets" json:"independentTargets,omitempty"`
}

// RingStore is the home of promotion records: an S3 bucket (one JSON object
// a record, created only if absent) and Parameter Store (each record's
// digest) in one account and region.
type RingStore struct {
	Bucket  string `yaml:"bucket" json:"bucket"`
	Account string `yaml:"account" json:"account"`
	Region  string `yaml:"region" json:"region"`
	// RoleArn is assumed to reach the home account; empty: the run's own
	// credentials.
	RoleArn string `yaml:"roleArn" json:"roleArn,omitempty"`
	// Prefix starts every object key and parameter name (default
	// DefaultRingPrefix).
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
}

// Promotion makes a phase wait for an earlier phase to have passed in an
// earlier run, between MinAge and MaxAge ago, at the same policy content.
type Promotion struct {
	From   string   `yaml:"from" json:"from"`
	MinAge Duration `yaml:"minAge" json:"minAge"`
	MaxAge Duration `yaml:"maxAge" json:"maxAge"`
	// Replay installs exactly the patch set the source phase installed
	// (default true).
	Replay *bool `yaml:"replay" json:"replay,omitempty"`
}

// ReplayEnabled reports whether the promoted phase replays the source
// phase's patch set (default true).
func (p Promotion) ReplayEnabled() bool { return p.Replay == nil || *p.Replay }

// DefaultRingPrefix is the default key prefix of the promotion store.
const DefaultRingPrefix = "patchgate"

// MaxPromotionAge bounds maxAge: a record a year old proves nothing about
// today's patches.
const MaxPromotionAge = 366 * 24 * time.Hour

var (
	// S3 general purpose bucket names: 3-63 of lowercase letters, digits,
	// dots and hyphens, starting and ending with a letter or digit.
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ipLike        = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$`)
	// A prefix is used both in S3 keys and in SSM parameter names, so it
	// takes the characters both accept.
	ringPrefixPattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]+(/[a-zA-Z0-9_.-]+)*$`)
)

// bucketProblem says what is wrong with an S3 bucket name, or "".
func bucketProblem(b string) string {
	switch {
	case !bucketPattern.MatchString(b):
		return "must be 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
	case strings.Contains(b, ".."), strings.Contains(b, ".-"), strings.Contains(b, "-."):
		return "must not have two adjacent periods or a period next to a hyphen"
	case ipLike.MatchString(b):
		return "must not look like an IP address"
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(b, p) {
			return "must not start with " + p + " (reserved by S3)"
		}
	}
	for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(b, s) {
			return "must not end with " + s + " (reserved by S3)"
		}
	}
	return ""
}

// accountList checks a list of accounts as spec.accounts is checked.
func (c *v) accountList(path string, accts []Account) {
	ids := make([]string, len(accts))
	for i, a := range accts {
		ap := fmt.Sprintf("%s[%d]", path, i)
		ids[i] = a.ID
		c.accountID(ap+".id", a.ID)
		c.roleArn(ap+".roleArn", a.RoleArn, a.ID)
	}
	c.unique(path, ids, "account")
}

func (c *v) accountID(path, id string) {
	if c.required(path, id) && !accountPattern.MatchString(id) {
		c.add(path, "%s %q must be a 12-digit AWS account id, quoted", path, id)
	}
}

func (c *v) roleArn(path, arn, account string) {
	if arn == "" {
		return
	}
	if !roleArnPattern.MatchString(arn) {
		c.add(path, "%s %q is not an IAM role ARN (arn:aws:iam::111122223333:role/name)", path, arn)
	} else if acct := strings.Split(arn, ":")[4]; accountPattern.MatchString(account) && acct != account {
		c.add(path, "%s is in account %s but the entry is for account %s", path, acct, account)
	}
}

func (c *v) regionList(path string, regions []string) {
	for i, r := range regions {
		if !regionPattern.MatchString(r) {
			c.add(fmt.Sprintf("%s[%d]", path, i), "%q is not an AWS region name like us-east-1", r)
		}
	}
	c.unique(path, regions, "region")
}

// rings checks spec.rings and every phase's scope and promotion.
func (c *v) rings() {
	s := &c.p.Spec
	if r := s.Rings; r != nil && r.Store != nil {
		st, sp := r.Store, "spec.rings.store"
		if c.required(sp+".bucket", st.Bucket) {
			if why := bucketProblem(st.Bucket); why != "" {
				c.add(sp+".bucket", "bucket %q %s", st.Bucket, why)
			}
		}
		c.accountID(sp+".account", st.Account)
		if c.required(sp+".region", st.Region) && !regionPattern.MatchString(st.Region) {
			c.add(sp+".region", "%q is not an AWS region name like us-east-1", st.Region)
		}
		c.roleArn(sp+".roleArn", st.RoleArn, st.Account)
		if px := st.Prefix; px != "" {
			low := strings.ToLower(px)
			switch {
			case len(px) > 200 || !ringPrefixPattern.MatchString(px):
				c.add(sp+".prefix", "prefix %q must be 1-200 of letters, digits, _ . - separated by single slashes, without a leading or trailing slash", px)
			case strings.HasPrefix(low, "aws") || strings.HasPrefix(low, "ssm"):
				c.add(sp+".prefix", "prefix %q must not start with aws or ssm: Parameter Store reserves those names", px)
			case strings.Count(px, "/") > 9:
				// Parameter names have at most 15 levels; records add 5.
				c.add(sp+".prefix", "prefix %q has %d levels; at most 10, as Parameter Store names have at most 15 and records add 5", px, strings.Count(px, "/")+1)
			}
		}
	}
	index := map[string]int{}
	for i, ph := range s.Phases {
		if _, dup := index[ph.Name]; !dup {
			index[ph.Name] = i
		}
	}
	for i, ph := range s.Phases {
		pp := fmt.Sprintf("spec.phases[%d]", i)
		if ph.Accounts != nil {
			if len(ph.Accounts) == 0 {
				c.add(pp+".accounts", "%s.accounts is empty: list the phase's accounts or remove the key to use spec.accounts", pp)
			}
			c.accountList(pp+".accounts", ph.Accounts)
		}
		if ph.Regions != nil {
			if len(ph.Regions) == 0 {
				c.add(pp+".regions", "%s.regions is empty: list the phase's regions or remove the key to use spec.regions", pp)
			}
			c.regionList(pp+".regions", ph.Regions)
		}
		pr := ph.Promotion
		if pr == nil {
			continue
		}
		path := pp + ".promotion"
		if c.required(path+".from", pr.From) {
			j, ok := index[pr.From]
			switch {
			case !ok:
				c.add(path+".from", "promotion.from %q is not a phase of this policy", pr.From)
			case j >= i:
				c.add(path+".from", "promotion.from %q must name an earlier phase than %q", pr.From, ph.Name)
			}
		}
		switch {
		case pr.MaxAge.Duration == 0:
			c.add(path+".maxAge", "promotion.maxAge is required: how old a record of %q may be, e.g. 336h (14 days)", pr.From)
		case pr.MinAge.Duration < 0:
			c.add(path+".minAge", "promotion.minAge %s must not be negative", pr.MinAge)
		case pr.MinAge.Duration >= pr.MaxAge.Duration:
			c.add(path+".maxAge", "promotion.maxAge (%s) must be greater than minAge (%s)", pr.MaxAge, pr.MinAge)
		case pr.MaxAge.Duration > MaxPromotionAge:
			c.add(path+".maxAge", "promotion.maxAge %s is longer than %s", pr.MaxAge, Duration{MaxPromotionAge})
		}
		if s.Rings == nil || s.Rings.Store == nil {
			c.add(path, "a promotion needs spec.rings.store (the S3 bucket, account and region where phase records are kept)")
		}
	}
}

// RingPrefix is the store's key prefix with its default applied.
func (st *RingStore) RingPrefix() string {
	if st.Prefix == "" {
		return DefaultRingPrefix
	}
	return st.Prefix
}

// StagePromotion is a compiled phase promotion.
type StagePromotion struct {
	From      string        `json:"from"`
	MinAge    time.Duration `json:"-"`
	MaxAge    time.Duration `json:"-"`
	MinAgeTxt string        `json:"minAge"`
	MaxAgeTxt string        `json:"maxAge"`
	Replay    bool          `json:"replay"`
}

// scope is a phase's compiled accounts, regions and promotion: the phase's
// own lists when it declares them, the spec's otherwise.
func scope(s *Spec, ph *Phase) ([]Account, []string, *StagePromotion) {
	accts, regions := s.Accounts, s.Regions
	if ph.Accounts != nil {
		accts = ph.Accounts
	}
	if ph.Regions != nil {
		regions = ph.Regions
	}
	var sp *StagePromotion
	if pr := ph.Promotion; pr != nil {
		sp = &StagePromotion{From: pr.From, MinAge: pr.MinAge.Duration, MaxAge: pr.MaxAge.Duration,
			MinAgeTxt: pr.MinAge.String(), MaxAgeTxt: pr.MaxAge.String(), Replay: pr.ReplayEnabled()}
	}
	return append([]Account(nil), accts...), append([]string(nil), regions...), sp
}

// accountPath names the ring fields holding account ids, which must be
// quoted as spec.accounts[].id must.
func accountPath(path string) bool {
	return path == "spec.rings.store.account" ||
		strings.HasPrefix(path, "spec.phases[") && strings.Contains(path, "].accounts[") && strings.HasSuffix(path, ".id")
}
