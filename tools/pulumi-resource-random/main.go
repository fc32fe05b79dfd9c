// pulumi-resource-random: the one resource of the `random` package this project uses,
// RandomPassword, for the end-to-end tests where the official plugin cannot be downloaded.
// Same token and property names as pulumi-random; a changed input generates a new password.
package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"os"

	p "github.com/pulumi/pulumi-go-provider"
	"github.com/pulumi/pulumi-go-provider/infer"
)

const version = "0.0.0-local"

const (
	alphanumeric = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	specials     = "!@#$%&*()-_=+[]{}<>:?"
)

type RandomPassword struct{}

func (r *RandomPassword) Annotate(a infer.Annotator) {
	a.SetToken("index/randomPassword", "RandomPassword")
}

type RandomPasswordArgs struct {
	Length  int               `pulumi:"length" provider:"replaceOnChanges"`
	Special *bool             `pulumi:"special,optional" provider:"replaceOnChanges"`
	Keepers map[string]string `pulumi:"keepers,optional" provider:"replaceOnChanges"`
}

type RandomPasswordState struct {
	Length  int               `pulumi:"length"`
	Special *bool             `pulumi:"special,optional"`
	Keepers map[string]string `pulumi:"keepers,optional"`
	Result  string            `pulumi:"result" provider:"secret"`
}

func (RandomPassword) Create(
	ctx context.Context, req infer.CreateRequest[RandomPasswordArgs],
) (infer.CreateResponse[RandomPasswordState], error) {
	in := req.Inputs
	state := RandomPasswordState{Length: in.Length, Special: in.Special, Keepers: in.Keepers}
	if req.DryRun {
		return infer.CreateResponse[RandomPasswordState]{ID: "none", Output: state}, nil
	}
	if in.Length < 1 {
		return infer.CreateResponse[RandomPasswordState]{}, fmt.Errorf("length must be at least 1")
	}
	alphabet := alphanumeric
	if in.Special == nil || *in.Special {
		alphabet += specials
	}
	result := make([]byte, in.Length)
	for i := range result {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return infer.CreateResponse[RandomPasswordState]{}, err
		}
		result[i] = alphabet[n.Int64()]
	}
	state.Result = string(result)
	return infer.CreateResponse[RandomPasswordState]{ID: "none", Output: state}, nil
}

func main() {
	provider, err := infer.NewProviderBuilder().
		WithResources(infer.Resource(RandomPassword{})).
		Build()
	if err == nil {
		err = p.RunProvider(context.Background(), "random", version, provider)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
