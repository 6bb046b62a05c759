package policy

// basePolicy is a valid policy that the table tests mutate, one rule at a time.
// Line numbers in the tests refer to this text.
const basePolicy = `apiVersion: patchgate.dev/v1
kind: PatchPolicy
metadata:
  name: web-fleet
  owners: ["@acme/platform"]
spec:
  operatingSystem: AMAZON_LINUX_2023
  baseline:
    approvalRules:
      - classifications: [Security, Bugfix]
        severities: [Critical, Important]
        approveAfterDays: 7
        complianceLevel: CRITICAL
    rejectedPatchesAction: BLOCK
  install:
    rebootOption: RebootIfNeeded
    deliveryTimeout: 10m
    executionTimeout: 2h
  schedule:
    cron: "0 3 * * 0"
    duration: 4h
    timezone: UTC
    freezes:
      - {from: "2026-12-20", to: "2027-01-04", reason: holiday freeze}
    changeCalendars: [prod-change-calendar]
  accounts:
    - id: "111122223333"
      roleArn: arn:aws:iam::111122223333:role/patchgate-target
  regions: [us-east-1, eu-west-1]
  phases:
    - name: staging
      targets:
        tags: {Environment: staging, App: web}
      maxConcurrency: "50%"
      maxErrors: "0"
      successThreshold: "100%"
      offline: fail
      waves: ["100%"]
      soak: 30m
      verify:
        compliance: true
        inspector:
          enabled: true
          failOnSeverity: HIGH
          rescanTimeout: 45m
          requireFixed: [CVE-2024-6387]
    - name: production
      targets: {tags: {Environment: production, App: web}}
      maxConcurrency: "10%"
      maxErrors: "2%"
      successThreshold: "98%"
      waves: ["10%", "50%", "100%"]
  reporting:
    cloudwatchNamespace: Patchgate
`
