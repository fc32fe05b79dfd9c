package main

import (
	"bytes"
	"context"
	"log"
	"testing"

	kafka "github.com/Mongey/terraform-provider-kafka/kafka"
	"github.com/hashicorp/terraform-plugin-sdk/v2/diag"
	"github.com/hashicorp/terraform-plugin-sdk/v2/helper/schema"
)

// What the upstream provider and the SDK's wait loops write, one line per level.
func logEveryLevel() {
	log.Printf("[TRACE] lazy client init")
	log.Printf("[DEBUG] Waiting for state to become: [Created]")
	log.Printf("[INFO] Partitions have changed!")
	log.Printf("[WARN] topic already exists")
	log.Printf("[ERROR] broker refused the request")
}

const forwarded = "[INFO] Partitions have changed!\n[WARN] topic already exists\n[ERROR] broker refused the request\n"

func loggingCall(context.Context, *schema.ResourceData, interface{}) diag.Diagnostics {
	logEveryLevel()
	return nil
}

// The upstream provider with every call it has swapped for one that logs at every level, so the
// wrapping is checked over the real resource map. It returns the calls swapped.
func upstreamThatLogs() (*schema.Provider, map[string]bool) {
	provider := kafka.Provider()
	provider.ConfigureFunc = func(*schema.ResourceData) (interface{}, error) {
		logEveryLevel()
		return nil, nil
	}
	calls := map[string]bool{}
	for name, resource := range provider.ResourcesMap {
		if resource.CreateContext != nil {
			resource.CreateContext, calls[name+" create"] = loggingCall, true
		}
		if resource.ReadContext != nil {
			resource.ReadContext, calls[name+" read"] = loggingCall, true
		}
		if resource.UpdateContext != nil {
			resource.UpdateContext, calls[name+" update"] = loggingCall, true
		}
		if resource.DeleteContext != nil {
			resource.DeleteContext, calls[name+" delete"] = loggingCall, true
		}
	}
	return provider, calls
}

// bridgeCall stands for one RPC: the bridge points the standard logger at a fresh writer to the
// engine, then calls into the provider. It returns what reached the engine.
func bridgeCall(t *testing.T, name string, call func()) string {
	t.Helper()
	var engine bytes.Buffer
	log.SetOutput(&engine)
	call()
	if filter, ok := log.Writer().(withoutDebugLines); !ok || filter.next != &engine {
		t.Errorf("%s: the filter should sit once over the bridge's writer, found a %T", name, log.Writer())
	}
	return engine.String()
}

func TestEveryCallForwardsOnlyInfoWarningsAndErrors(t *testing.T) {
	flags, output := log.Flags(), log.Writer()
	t.Cleanup(func() { log.SetFlags(flags); log.SetOutput(output) })
	log.SetFlags(0)

	provider, swapped := upstreamThatLogs()
	for _, call := range []string{"kafka_acl create", "kafka_topic update", "kafka_user_scram_credential delete"} {
		if !swapped[call] {
			t.Fatalf("upstream has no %s (calls: %v): the test would check nothing", call, swapped)
		}
	}
	provider = withQuietCalls(provider)

	if got := bridgeCall(t, "configure", func() { _, _ = provider.ConfigureFunc(nil) }); got != forwarded {
		t.Errorf("configure forwarded %q, want %q", got, forwarded)
	}
	for name, resource := range provider.ResourcesMap {
		for call, f := range map[string]func(context.Context, *schema.ResourceData, interface{}) diag.Diagnostics{
			"create": resource.CreateContext, "read": resource.ReadContext,
			"update": resource.UpdateContext, "delete": resource.DeleteContext,
		} {
			if f == nil {
				continue
			}
			if got := bridgeCall(t, name+" "+call, func() { f(context.Background(), nil, nil) }); got != forwarded {
				t.Errorf("%s %s forwarded %q, want %q", name, call, got, forwarded)
			}
		}
	}
}

func TestAFilterAlreadyInPlaceIsKept(t *testing.T) {
	output := log.Writer()
	t.Cleanup(func() { log.SetOutput(output) })
	var engine bytes.Buffer
	log.SetOutput(&engine)
	filterLogs()
	filterLogs()
	if filter, ok := log.Writer().(withoutDebugLines); !ok || filter.next != &engine {
		t.Fatalf("filterLogs twice: want one filter over the writer, found a %T", log.Writer())
	}
}
