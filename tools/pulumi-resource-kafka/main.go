// pulumi-resource-kafka: the upstream Terraform Kafka provider (Mongey/terraform-provider-kafka)
// served to the Pulumi engine through pulumi-terraform-bridge, under the resource tokens the
// pulumi_kafka Python SDK registers. Built for the end-to-end tests, where the official plugin
// cannot be downloaded; see the README ("The real engine in CI").
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"

	kafka "github.com/Mongey/terraform-provider-kafka/kafka"
	"github.com/hashicorp/terraform-plugin-sdk/v2/diag"
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
)

// withoutDebugLines drops the upstream provider's `[DEBUG]` and `[TRACE]` log lines. The bridge
// points Go's standard logger at the engine at the start of every RPC (tfbridge's
// LogRedirector) and forwards each line as a blocking Log call, whatever the level: a quarter of
// the provider's CPU in the engine benchmark of the per-object layout. Warnings and errors still
// reach the engine.
type withoutDebugLines struct{ next io.Writer }

func (w withoutDebugLines) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("[DEBUG] ")) || bytes.Contains(p, []byte("[TRACE] ")) {
		return len(p), nil
	}
	return w.next.Write(p)
}

// filterLogs puts the filter over whatever writer the bridge set for the call in progress.
func filterLogs() {
	if _, filtered := log.Writer().(withoutDebugLines); !filtered {
		log.SetOutput(withoutDebugLines{log.Writer()})
	}
}

func quiet[F ~func(context.Context, *schema.ResourceData, interface{}) diag.Diagnostics](f F) F {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, d *schema.ResourceData, meta interface{}) diag.Diagnostics {
		filterLogs()
		return f(ctx, d, meta)
	}
}

// withQuietCalls sets the filter at the start of every call into the provider: configure and
// each resource's create, read, update and delete. The bridge cannot be told to drop those lines,
// and it swaps the writer in every RPC, so this is best effort: a line that a wait loop in one
// call writes just after another RPC has swapped in a fresh writer still reaches the engine
// (a handful per deployment, against dozens). main_test.go pins what is deterministic.
func withQuietCalls(provider *schema.Provider) *schema.Provider {
	if configure := provider.ConfigureFunc; configure != nil {
		provider.ConfigureFunc = func(d *schema.ResourceData) (interface{}, error) {
			filterLogs()
			return configure(d)
		}
	}
	for _, resource := range provider.ResourcesMap {
		resource.CreateContext = quiet(resource.CreateContext)
		resource.ReadContext = quiet(resource.ReadContext)
		resource.UpdateContext = quiet(resource.UpdateContext)
		resource.DeleteContext = quiet(resource.DeleteContext)
	}
	return provider
}

// The upstream provider release this plugin wraps; stamped into the plugin's version.
const upstreamVersion = "0.13.1"

var version = "0.0.0-local+mongey." + upstreamVersion

func main() {
	info := tfbridge.ProviderInfo{
		P:       shimv2.NewProvider(withQuietCalls(kafka.Provider())),
		Name:    "kafka",
		Version: version,
		Resources: map[string]*tfbridge.ResourceInfo{
			"kafka_topic": {Tok: "kafka:index/topic:Topic"},
			// As pulumi-kafka does: `resource_name` would clash with every SDK's resource name
			// argument, so both ACL resource fields carry an `acl` prefix in Pulumi.
			"kafka_acl": {
				Tok: "kafka:index/acl:Acl",
				Fields: map[string]*tfbridge.SchemaInfo{
					"resource_name": {Name: "aclResourceName"},
					"resource_type": {Name: "aclResourceType"},
				},
			},
			"kafka_quota":                 {Tok: "kafka:index/quota:Quota"},
			"kafka_user_scram_credential": {Tok: "kafka:index/userScramCredential:UserScramCredential"},
		},
	}
	// The engine needs only the package name and version from the schema to serve these tokens.
	schema := []byte(fmt.Sprintf(`{"name":"kafka","version":%q}`, version))
	tfbridge.Main("kafka", version, info, schema)
}
