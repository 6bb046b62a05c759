package promote

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Client is the S3 client for the store's account and region (cfg
// already carries that account's credentials and the store's region).
// With a custom endpoint (the simulator, moto) requests are path-style,
// as such endpoints expect; against AWS the SDK's default applies.
func S3Client(cfg aws.Config) *s3.Client {
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = cfg.BaseEndpoint != nil
		// Records carry their own digest (Parameter Store); the SDK's note
		// that a response had no checksum to validate is noise in the log.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}
