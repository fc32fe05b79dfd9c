// pulumi-resource-kafka: the upstream Terraform Kafka provider (Mongey/terraform-provider-kafka)
// served to the Pulumi engine through pulumi-terraform-bridge, under the resource tokens the
// pulumi_kafka Python SDK registers. Built for the end-to-end tests, where the official plugin
// cannot be downloaded; see the README ("The real engine in CI").
package main

import (
	"fmt"

	kafka "github.com/Mongey/terraform-provider-kafka/kafka"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
)

// The upstream provider release this plugin wraps; stamped into the plugin's version.
const upstreamVersion = "0.13.1"

var version = "0.0.0-local+mongey." + upstreamVersion

func main() {
	info := tfbridge.ProviderInfo{
		P:       shimv2.NewProvider(kafka.Provider()),
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
