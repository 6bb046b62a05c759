package policy

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones must resolve in a distroless image without /usr/share/zoneinfo
	"unicode/utf8"

	"github.com/patchgate/patchgate/internal/suggest"
	"github.com/robfig/cron/v3"
)

// OperatingSystems are SSM's OperatingSystem values.
var OperatingSystems = []string{
	"WINDOWS", "AMAZON_LINUX", "AMAZON_LINUX_2", "AMAZON_LINUX_2022", "AMAZON_LINUX_2023", "UBUNTU", "REDHAT_ENTERPRISE_LINUX",
	"SUSE", "CENTOS", "ORACLE_LINUX", "DEBIAN", "MACOS", "RASPBIAN", "ROCKY_LINUX", "ALMA_LINUX",
}

// FilterKeys are the PatchFilter keys SSM accepts in approval rules, per
// operating system.
var FilterKeys = map[string][]string{
	"WINDOWS":                 {"PATCH_SET", "PRODUCT", "PRODUCT_FAMILY", "CLASSIFICATION", "MSRC_SEVERITY"},
	"UBUNTU":                  {"PRODUCT", "PRIORITY", "SECTION"},
	"DEBIAN":                  {"PRODUCT", "PRIORITY", "SECTION"},
	"RASPBIAN":                {"PRODUCT", "PRIORITY", "SECTION"},
	"MACOS":                   {"PRODUCT", "CLASSIFICATION"},
	"AMAZON_LINUX":            {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"AMAZON_LINUX_2":          {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"AMAZON_LINUX_2022":       {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"AMAZON_LINUX_2023":       {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"REDHAT_ENTERPRISE_LINUX": {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"CENTOS":                  {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"ORACLE_LINUX":            {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"ROCKY_LINUX":             {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"ALMA_LINUX":              {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
	"SUSE":                    {"PRODUCT", "CLASSIFICATION", "SEVERITY"},
}

// DebianLike are the systems whose approval rules take no approval delay.
func DebianLike(os string) bool { return os == "UBUNTU" || os == "DEBIAN" || os == "RASPBIAN" }

// SeverityKey is the PatchFilter key the friendly `severities` field maps to.
func SeverityKey(os string) string {
	if os == "WINDOWS" {
		return "MSRC_SEVERITY"
	}
	return "SEVERITY"
}

// Enumerations of the format.
var (
	ComplianceLevels       = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNSPECIFIED"}
	RejectedPatchesActions = []string{"BLOCK", "ALLOW_AS_DEPENDENCY"}
	RebootOptions          = []string{"RebootIfNeeded", "NoReboot"}
	OfflineActions         = []string{"fail", "skip"}
	PendingRebootRules     = []string{PendingRebootFail, PendingRebootWarn}
	InspectorSeverities    = []string{"CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNTRIAGED"}
	namePattern            = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	accountPattern         = regexp.MustCompile(`^[0-9]{12}$`)
	roleArnPattern         = regexp.MustCompile(`^arn:aws(-[a-z]+)*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}$`)
	regionPattern          = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	instanceIDPattern      = regexp.MustCompile(`^(i|mi)-[0-9a-f]{8,17}$`)
	maxConcurrencyPattern  = regexp.MustCompile(`^([1-9][0-9]*|[1-9][0-9]%|[1-9]%|100%)$`)
	maxErrorsPattern       = regexp.MustCompile(`^([1-9][0-9]*|0|[1-9][0-9]%|[0-9]%|100%)$`)
	sharePattern           = regexp.MustCompile(`^([1-9][0-9]?|100)%$`)
	cvePattern             = regexp.MustCompile(`^CVE-[0-9]{4}-[0-9]{4,}$`)
	calendarPattern        = regexp.MustCompile(`^([a-zA-Z0-9_.-]{3,128}|arn:aws(-[a-z]+)*:ssm:[a-z0-9-]+:[0-9]{12}:document/[a-zA-Z0-9_.-]{3,128})$`)
	namespacePattern       = regexp.MustCompile(`^[a-zA-Z0-9._/#:-]{1,255}$`)
	cronParser             = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow)
	dateLayout             = "2006-01-02"
)

// v collects problems for one policy, positioned by field path.
type v struct {
	p     *Policy
	probs Problems
}

func (c *v) add(path, format string, args ...any) {
	pos := c.p.Source.PosOf(path)
	c.probs = append(c.probs, Problem{File: c.p.Source.File, Line: pos.Line, Col: pos.Col, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *v) required(path, val string) bool {
	if val == "" {
		c.add(path, "%s is required", path)
		return false
	}
	return true
}

func (c *v) oneOf(path, val string, allowed []string) {
	if val != "" && !slices.Contains(allowed, val) {
		c.add(path, "%s: %q is not one of %s%s", path, val, strings.Join(allowed, ", "), closest(val, allowed))
	}
}

func closest(val string, allowed []string) string {
	for _, a := range allowed {
		if strings.EqualFold(a, val) {
			return fmt.Sprintf(" (did you mean %q? values are case-sensitive)", a)
		}
	}
	return suggest.DidYouMean(val, allowed, 2)
}

func (c *v) count(path string, n, lo, hi int, what string) {
	if n < lo || n > hi {
		if lo == hi {
			c.add(path, "%s must have exactly %d %s, has %d", path, lo, what, n)
		} else {
			c.add(path, "%s must have %d to %d %s, has %d", path, lo, hi, what, n)
		}
	}
}

func (c *v) durationIn(path string, d Duration, lo, hi time.Duration, optional bool) {
	if d.Duration == 0 && optional {
		return
	}
	if d.Duration < lo || d.Duration > hi {
		c.add(path, "%s is %s; it must be between %s and %s", path, d, Duration{lo}, Duration{hi})
	}
}

// unique reports each value listed more than once, once, with how many
// times it is listed: a list of 95,000 copies is one problem, not 94,999.
// One pass and a map, so its cost is linear in the list.
func (c *v) unique(path string, vals []string, what string) {
	type seen struct{ first, second, n int }
	idx := make(map[string]*seen, len(vals))
	var repeated []string // in the order of their first repeat
	for i, s := range vals {
		e := idx[s]
		if e == nil {
			idx[s] = &seen{first: i, n: 1}
			continue
		}
		if e.n++; e.n == 2 {
			e.second = i
			repeated = append(repeated, s)
		}
	}
	for _, s := range repeated {
		e := idx[s]
		times := "twice"
		if e.n > 2 {
			times = thousands(e.n) + " times"
		}
		c.add(fmt.Sprintf("%s[%d]", path, e.second), "%s %q is listed %s (first at %s[%d]): list it once", what, s, times, path, e.first)
	}
}

// validate checks one decoded policy against every rule of the format.
func validate(p *Policy) Problems {
	c := &v{p: p}
	if c.required("apiVersion", p.APIVersion) && p.APIVersion != APIVersion {
		c.add("apiVersion", "apiVersion %q is not supported: use %q", p.APIVersion, APIVersion)
	}
	if c.required("kind", p.Kind) && p.Kind != Kind {
		c.add("kind", "kind %q is not supported: use %q", p.Kind, Kind)
	}
	m := p.Metadata
	if c.required("metadata.name", m.Name) && !namePattern.MatchString(m.Name) {
		c.add("metadata.name", "metadata.name %q must be 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit", m.Name)
	}
	if m.Owners != nil && len(m.Owners) == 0 {
		// owners is optional, but an empty list says nothing: most likely
		// the names were lost in an edit.
		c.add("metadata.owners", "metadata.owners is empty: list at least one owner (e.g. [\"@acme/platform\"]) or remove the key")
	}
	for i, o := range m.Owners {
		if strings.TrimSpace(o) == "" {
			c.add(fmt.Sprintf("metadata.owners[%d]", i), "an owner must not be empty")
		}
	}
	s := &p.Spec
	os := s.OperatingSystem
	if c.required("spec.operatingSystem", os) {
		c.oneOf("spec.operatingSystem", os, OperatingSystems)
	}
	c.baseline(os)
	c.install()
	c.schedule()
	ids := make([]string, len(s.Accounts))
	for i, a := range s.Accounts {
		ap := fmt.Sprintf("spec.accounts[%d]", i)
		ids[i] = a.ID
		if c.required(ap+".id", a.ID) && !accountPattern.MatchString(a.ID) {
			c.add(ap+".id", "%s.id %q must be a 12-digit AWS account id, quoted", ap, a.ID)
		}
		if a.RoleArn != "" {
			if !roleArnPattern.MatchString(a.RoleArn) {
				c.add(ap+".roleArn", "%s.roleArn %q is not an IAM role ARN (arn:aws:iam::111122223333:role/name)", ap, a.RoleArn)
			} else if acct := strings.Split(a.RoleArn, ":")[4]; accountPattern.MatchString(a.ID) && acct != a.ID {
				c.add(ap+".roleArn", "%s.roleArn is in account %s but the entry is for account %s", ap, acct, a.ID)
			}
		}
	}
	c.unique("spec.accounts", ids, "account")
	if len(s.Regions) == 0 {
		c.add("spec.regions", "spec.regions is required: list at least one region, e.g. [us-east-1]")
	}
	for i, r := range s.Regions {
		if !regionPattern.MatchString(r) {
			c.add(fmt.Sprintf("spec.regions[%d]", i), "%q is not an AWS region name like us-east-1", r)
		}
	}
	c.unique("spec.regions", s.Regions, "region")
	c.phases()
	c.rings()
	c.safety()
	if ns := s.Reporting.CloudwatchNamespace; ns != "" {
		if !namespacePattern.MatchString(ns) || strings.HasPrefix(ns, "AWS/") || strings.HasPrefix(ns, ":") {
			c.add("spec.reporting.cloudwatchNamespace", "cloudwatchNamespace %q must be 1-255 of letters, digits and . _ / # : -, must not start with ':' and must not start with \"AWS/\" (reserved)", ns)
		}
	}
	return c.probs
}

func (c *v) baseline(os string) {
	b := &c.p.Spec.Baseline
	c.count("spec.baseline.approvalRules", len(b.ApprovalRules), 1, 10, "approval rules")
	allowed := FilterKeys[os]
	for i, r := range b.ApprovalRules {
		rp := fmt.Sprintf("spec.baseline.approvalRules[%d]", i)
		filters := 0
		friendly := map[string]string{} // PatchFilter key -> friendly field
		check := func(field string, vals []string, key string) {
			if len(vals) == 0 {
				return
			}
			filters++
			friendly[key] = field
			if len(vals) > 20 {
				c.add(rp+"."+field, "%s.%s has %d values; SSM allows at most 20", rp, field, len(vals))
			}
			if os != "" && allowed != nil && !slices.Contains(allowed, key) {
				hint := ""
				if DebianLike(os) {
					hint = "; on " + os + " use filters with PRIORITY, SECTION or PRODUCT"
				}
				c.add(rp+"."+field, "%s cannot be used on %s (it maps to the %s filter, which %s does not support)%s", field, os, key, os, hint)
			} else {
				c.filterValues(rp+"."+field, os, key, vals)
			}
			c.unique(rp+"."+field, vals, "value")
		}
		check("classifications", r.Classifications, "CLASSIFICATION")
		check("severities", r.Severities, SeverityKey(os))
		check("products", r.Products, "PRODUCT")
		keys := make([]string, 0, len(r.Filters))
		for k := range r.Filters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			vals := r.Filters[k]
			fp := rp + ".filters." + k
			filters++
			if f, dup := friendly[k]; dup {
				c.add(fp, "filter %s is also set by %s: use one of them", k, f)
			}
			if allowed != nil && !slices.Contains(allowed, k) {
				c.add(fp, "filter key %s is not valid for %s: use one of %s%s", k, os, strings.Join(allowed, ", "), closest(k, allowed))
			} else {
				c.filterValues(fp, os, k, vals)
			}
			if len(vals) < 1 || len(vals) > 20 {
				c.add(fp, "filter %s must have 1 to 20 values, has %d", k, len(vals))
			}
		}
		if filters > 4 {
			c.add(rp, "%s has %d patch filters; SSM allows at most 4 per rule (classifications, severities, products and filters together)", rp, filters)
		}
		switch {
		case DebianLike(os):
			if r.ApproveAfterDays != nil {
				c.add(rp+".approveAfterDays", "approveAfterDays cannot be used on %s: SSM approves Debian-family patches as soon as they are released; remove it", os)
			}
			if r.ApproveUntilDate != "" {
				c.add(rp+".approveUntilDate", "approveUntilDate cannot be used on %s; remove it", os)
			}
		case r.ApproveAfterDays != nil && r.ApproveUntilDate != "":
			c.add(rp+".approveUntilDate", "set exactly one of approveAfterDays and approveUntilDate, not both")
		case r.ApproveAfterDays == nil && r.ApproveUntilDate == "":
			c.add(rp, "%s needs exactly one of approveAfterDays (0-360) or approveUntilDate (YYYY-MM-DD)", rp)
		}
		if r.ApproveAfterDays != nil && (*r.ApproveAfterDays < 0 || *r.ApproveAfterDays > 360) {
			c.add(rp+".approveAfterDays", "approveAfterDays %d must be between 0 and 360", *r.ApproveAfterDays)
		}
		if r.ApproveUntilDate != "" {
			if _, err := time.Parse(dateLayout, r.ApproveUntilDate); err != nil {
				c.add(rp+".approveUntilDate", "approveUntilDate %q must be a date written YYYY-MM-DD", r.ApproveUntilDate)
			}
		}
		c.oneOf(rp+".complianceLevel", r.ComplianceLevel, ComplianceLevels)
		if r.EnableNonSecurity && os == "WINDOWS" {
			c.add(rp+".enableNonSecurity", "enableNonSecurity applies to Linux only; remove it on WINDOWS")
		}
	}
	for _, l := range []struct {
		path string
		ids  []string
	}{{"spec.baseline.approvedPatches", b.ApprovedPatches}, {"spec.baseline.rejectedPatches", b.RejectedPatches}} {
		if len(l.ids) > 50 {
			c.add(l.path, "%s has %d entries; SSM allows at most 50", l.path, len(l.ids))
		}
		for i, id := range l.ids {
			if strings.TrimSpace(id) == "" || len(id) > 100 {
				c.add(fmt.Sprintf("%s[%d]", l.path, i), "a patch id must be 1 to 100 characters")
			}
		}
		c.unique(l.path, l.ids, "patch")
	}
	c.oneOf("spec.baseline.rejectedPatchesAction", b.RejectedPatchesAction, RejectedPatchesActions)
}

func (c *v) install() {
	in := c.p.Spec.Install
	c.oneOf("spec.install.rebootOption", in.RebootOption, RebootOptions)
	c.oneOf("spec.install.pendingReboot", in.PendingReboot, PendingRebootRules)
	c.durationIn("spec.install.deliveryTimeout", in.DeliveryTimeout, 30*time.Second, 720*time.Hour, true)
	c.durationIn("spec.install.executionTimeout", in.ExecutionTimeout, time.Minute, 72*time.Hour, true)
}

func (c *v) schedule() {
	s := c.p.Spec.Schedule
	if s == nil {
		return
	}
	if c.required("spec.schedule.cron", s.Cron) {
		if f := strings.Fields(s.Cron); len(f) != 5 {
			c.add("spec.schedule.cron", "cron %q must have 5 fields (minute hour day-of-month month day-of-week), like GitHub's schedule", s.Cron)
		} else if sched, err := cronParser.Parse(s.Cron); err != nil {
			c.add("spec.schedule.cron", "cron %q: %v", s.Cron, err)
		} else if why := neverFires(sched); why != "" {
			c.add("spec.schedule.cron", "cron %q never fires: %s; pick a day of the month that those months have (days 1-28 exist in every month)", s.Cron, why)
		}
	}
	c.durationIn("spec.schedule.duration", s.Duration, time.Minute, 7*24*time.Hour, true)
	if s.Timezone != "" {
		if _, err := time.LoadLocation(s.Timezone); err != nil || s.Timezone == "Local" {
			c.add("spec.schedule.timezone", "timezone %q is not an IANA time zone name like UTC or Europe/Berlin", s.Timezone)
		}
	}
	for i, f := range s.Freezes {
		fp := fmt.Sprintf("spec.schedule.freezes[%d]", i)
		from, err1 := time.Parse(dateLayout, f.From)
		to, err2 := time.Parse(dateLayout, f.To)
		if err1 != nil {
			c.add(fp+".from", "freeze from %q must be a date written YYYY-MM-DD", f.From)
		}
		if err2 != nil {
			c.add(fp+".to", "freeze to %q must be a date written YYYY-MM-DD", f.To)
		}
		if err1 == nil && err2 == nil && to.Before(from) {
			c.add(fp+".to", "freeze ends (%s) before it starts (%s): swap the dates", f.To, f.From)
		}
	}
	for i, cal := range s.ChangeCalendars {
		if !calendarPattern.MatchString(cal) {
			c.add(fmt.Sprintf("spec.schedule.changeCalendars[%d]", i), "%q is not an SSM Change Calendar name (3-128 of letters, digits, _ . -) or document ARN", cal)
		}
	}
	c.unique("spec.schedule.changeCalendars", s.ChangeCalendars, "change calendar")
}

func (c *v) phases() {
	phases := c.p.Spec.Phases
	if len(phases) == 0 {
		c.add("spec.phases", "spec.phases is required: list 1 to 10 phases, e.g. staging then production")
		return
	}
	c.count("spec.phases", len(phases), 1, 10, "phases")
	names := make([]string, len(phases))
	for i, ph := range phases {
		pp := fmt.Sprintf("spec.phases[%d]", i)
		names[i] = ph.Name
		if c.required(pp+".name", ph.Name) && !namePattern.MatchString(ph.Name) {
			c.add(pp+".name", "phase name %q must be lowercase letters, digits and dashes", ph.Name)
		}
		t := ph.Targets
		switch {
		case len(t.Tags) > 0 && len(t.InstanceIDs) > 0:
			c.add(pp+".targets", "targets must have exactly one of tags and instanceIds, not both")
		case len(t.Tags) == 0 && len(t.InstanceIDs) == 0:
			c.add(pp+".targets", "targets needs tags (1-5 keys) or instanceIds")
		}
		if len(t.Tags) > 5 {
			c.add(pp+".targets.tags", "targets.tags has %d keys; SSM allows at most 5 tag targets", len(t.Tags))
		}
		for k, val := range t.Tags {
			// AWS counts a tag's length in Unicode characters, as the schema's
			// maxLength does, not in bytes.
			if k == "" || utf8.RuneCountInString(k) > 128 || strings.HasPrefix(k, "aws:") {
				c.add(pp+".targets.tags."+k, "tag key %q must be 1-128 characters and not start with aws:", k)
			}
			if utf8.RuneCountInString(val) > 256 {
				c.add(pp+".targets.tags."+k, "tag value for %s is longer than 256 characters", k)
			}
		}
		for j, id := range t.InstanceIDs {
			if !instanceIDPattern.MatchString(id) {
				c.add(fmt.Sprintf("%s.targets.instanceIds[%d]", pp, j), "%q is not an instance id like i-0123456789abcdef0 (or mi- for a managed node)", id)
			}
		}
		c.unique(pp+".targets.instanceIds", t.InstanceIDs, "instance")
		if ph.MaxConcurrency != "" && !maxConcurrencyPattern.MatchString(ph.MaxConcurrency) {
			c.add(pp+".maxConcurrency", "maxConcurrency %q must be a number of instances (\"10\") or a percentage (\"10%%\"), at least 1", ph.MaxConcurrency)
		}
		if ph.MaxErrors != "" && !maxErrorsPattern.MatchString(ph.MaxErrors) {
			c.add(pp+".maxErrors", "maxErrors %q must be a number of instances (\"0\", \"2\") or a percentage (\"2%%\")", ph.MaxErrors)
		}
		if ph.SuccessThreshold != "" && !sharePattern.MatchString(ph.SuccessThreshold) {
			c.add(pp+".successThreshold", "successThreshold %q must be a percentage from 1%% to 100%%, like \"98%%\"", ph.SuccessThreshold)
		}
		c.oneOf(pp+".offline", ph.Offline, OfflineActions)
		c.waves(pp, ph.Waves)
		c.durationIn(pp+".soak", ph.Soak, 0, 7*24*time.Hour, true)
		ins := ph.Verify.Inspector
		c.oneOf(pp+".verify.inspector.failOnSeverity", ins.FailOnSeverity, InspectorSeverities)
		c.durationIn(pp+".verify.inspector.rescanTimeout", ins.RescanTimeout, time.Minute, 24*time.Hour, true)
		for j, cve := range ins.RequireFixed {
			if !cvePattern.MatchString(cve) {
				c.add(fmt.Sprintf("%s.verify.inspector.requireFixed[%d]", pp, j), "%q is not a CVE id like CVE-2024-6387", cve)
			}
		}
		c.unique(pp+".verify.inspector.requireFixed", ins.RequireFixed, "CVE")
		if !ins.Enabled && (len(ins.RequireFixed) > 0 || ins.FailOnSeverity != "" || ins.RescanTimeout.Duration != 0) {
			c.add(pp+".verify.inspector", "inspector settings are given but inspector.enabled is not true: set enabled: true or remove them")
		}
	}
	seen := map[string]int{}
	for i, n := range names {
		if j, dup := seen[n]; dup && n != "" {
			c.add(fmt.Sprintf("spec.phases[%d].name", i), "phase name %q is used by two phases (also spec.phases[%d]): names must be unique", n, j)
		}
		seen[n] = i
	}
}

func (c *v) waves(pp string, waves []string) {
	if waves == nil {
		return
	}
	path := pp + ".waves"
	if len(waves) == 0 || len(waves) > 10 {
		c.add(path, "waves must have 1 to 10 entries, has %d", len(waves))
		return
	}
	prev := 0
	for i, w := range waves {
		wp := fmt.Sprintf("%s[%d]", path, i)
		if !sharePattern.MatchString(w) {
			c.add(wp, "wave %q must be a cumulative percentage like \"10%%\"", w)
			return
		}
		n, _ := strconv.Atoi(strings.TrimSuffix(w, "%"))
		if n <= prev {
			c.add(wp, "waves are cumulative and must increase: %s does not follow %d%%", w, prev)
			return
		}
		prev = n
	}
	if prev != 100 {
		c.add(fmt.Sprintf("%s[%d]", path, len(waves)-1), "the last wave must be \"100%%\" so every instance is patched, not %q", waves[len(waves)-1])
	}
}

// checkSet applies the rules that span files: names are unique.
func checkSet(ps []*Policy) Problems {
	var out Problems
	first := map[string]*Policy{}
	for _, p := range ps {
		name := p.Metadata.Name
		if prev, dup := first[name]; dup {
			pos := p.Source.PosOf("metadata.name")
			ppos := prev.Source.PosOf("metadata.name")
			out = append(out, Problem{File: p.Source.File, Line: pos.Line, Col: pos.Col, Path: "metadata.name",
				Message: fmt.Sprintf("policy name %q is already used by %s:%d:%d: names must be unique", name, prev.Source.File, ppos.Line, ppos.Col)})
			continue
		}
		first[name] = p
	}
	return out
}
