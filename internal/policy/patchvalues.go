package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// The documented values of the PatchFilter keys that have a closed set,
// per operating system: SSM's PatchFilter and DescribePatchProperties
// references and the Patch Manager guide ("How patch baseline rules work on
// Linux-based systems", "Creating a custom patch baseline for Windows
// Server"). SSM refuses other values only when the baseline is synced; the
// loader refuses them at validate time, where the line is known.
//
// Keys absent for an OS (PRODUCT, PRODUCT_FAMILY, SECTION) take
// open-ended values that change with every release, so they are not
// enumerated. A value may always be "*", which SSM documents as matching
// every value.
var (
	windowsClassifications = []string{"CriticalUpdates", "DefinitionUpdates", "Drivers", "FeaturePacks", "SecurityUpdates", "ServicePacks", "Tools", "UpdateRollups", "Updates", "Upgrades"}
	msrcSeverities         = []string{"Critical", "Important", "Moderate", "Low", "Unspecified"}
	patchSets              = []string{"OS", "APPLICATION"}
	debianPriorities       = []string{"Required", "Important", "Standard", "Optional", "Extra"}
	yumClassifications     = []string{"Security", "Bugfix", "Enhancement", "Recommended", "Newpackage"}
	amazonSeverities       = []string{"Critical", "Important", "Medium", "Low", "None"}
	redhatSeverities       = []string{"Critical", "Important", "Moderate", "Low"}
	suseClassifications    = []string{"Security", "Recommended", "Optional", "Feature", "Document", "Yast"}
	suseSeverities         = []string{"Critical", "Important", "Moderate", "Low", "Unspecified"}
	// On macOS a classification names the package manager that installs.
	macClassifications = []string{"softwareupdate", "installer", "brew", "brew cask"}
)

// FilterValues maps an operating system and a PatchFilter key to the
// values SSM documents for it; a key missing here is not enumerated.
var FilterValues = map[string]map[string][]string{
	"WINDOWS":                 {"CLASSIFICATION": windowsClassifications, "MSRC_SEVERITY": msrcSeverities, "PATCH_SET": patchSets},
	"UBUNTU":                  {"PRIORITY": debianPriorities},
	"DEBIAN":                  {"PRIORITY": debianPriorities},
	"RASPBIAN":                {"PRIORITY": debianPriorities},
	"AMAZON_LINUX":            {"CLASSIFICATION": yumClassifications, "SEVERITY": amazonSeverities},
	"AMAZON_LINUX_2":          {"CLASSIFICATION": yumClassifications, "SEVERITY": amazonSeverities},
	"AMAZON_LINUX_2022":       {"CLASSIFICATION": yumClassifications, "SEVERITY": amazonSeverities},
	"AMAZON_LINUX_2023":       {"CLASSIFICATION": yumClassifications, "SEVERITY": amazonSeverities},
	"REDHAT_ENTERPRISE_LINUX": {"CLASSIFICATION": yumClassifications, "SEVERITY": redhatSeverities},
	"CENTOS":                  {"CLASSIFICATION": yumClassifications, "SEVERITY": redhatSeverities},
	"ROCKY_LINUX":             {"CLASSIFICATION": yumClassifications, "SEVERITY": redhatSeverities},
	"ALMA_LINUX":              {"CLASSIFICATION": yumClassifications, "SEVERITY": redhatSeverities},
	"ORACLE_LINUX":            {"CLASSIFICATION": yumClassifications, "SEVERITY": redhatSeverities},
	"SUSE":                    {"CLASSIFICATION": suseClassifications, "SEVERITY": suseSeverities},
	"MACOS":                   {"CLASSIFICATION": macClassifications},
}

// filterValues checks the values of one patch filter (a friendly field or
// a raw filter key) against the documented values for os.
func (c *v) filterValues(path, os, key string, vals []string) {
	allowed := FilterValues[os][key]
	if allowed == nil {
		return
	}
	for i, val := range vals {
		if val == "*" || slices.Contains(allowed, val) {
			continue
		}
		hint := closest(val, allowed)
		if hint == "" {
			hint = elsewhere(val, key)
		}
		c.add(fmt.Sprintf("%s[%d]", path, i), "%q is not a %s value on %s: use one of %s, or \"*\"%s", val, key, os, strings.Join(allowed, ", "), hint)
	}
}

// elsewhere says which systems a value belongs to, for a value copied from
// a policy for another OS ("SecurityUpdates" is a Windows classification).
func elsewhere(val, key string) string {
	var oses []string
	for os, keys := range FilterValues {
		for k, vals := range keys {
			if slices.Contains(vals, val) && (k == key || strings.HasSuffix(k, "SEVERITY") && strings.HasSuffix(key, "SEVERITY")) {
				oses = append(oses, os)
				break
			}
		}
	}
	if len(oses) == 0 {
		return ""
	}
	sort.Strings(oses)
	if len(oses) > 3 {
		oses = append(oses[:3], "…")
	}
	return fmt.Sprintf(" (%q is a value for %s)", val, strings.Join(oses, ", "))
}
