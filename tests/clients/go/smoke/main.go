// Command smoke calls `qilu dev` through the Go client that tests/clients/go/buf.gen.yaml
// generates: create and read an enterprise, and one error with its BadRequest field violation
// decoded from the rich status. Built and run by tests/clients/go/check.sh; exits 1 on the
// first failure.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	registryv1 "example.gov.cn/yourteam/qilu-client/gen/go/qilu/registry/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

const (
	validUscc = "91370211MA94000318"
	badUscc   = "91370211MA94000310"
)

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAILED: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	addr := flag.String("addr", "127.0.0.1:50051", "qilu dev's address")
	flag.Parse()
	token := os.Getenv("QILU_TOKEN")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)

	conn, err := grpc.DialContext(ctx, *addr, grpc.WithInsecure(), grpc.WithBlock())
	if err != nil {
		fail("dial %s: %v", *addr, err)
	}
	defer conn.Close()
	registry := registryv1.NewEnterpriseRegistryServiceClient(conn)

	created, err := registry.CreateEnterprise(ctx, &registryv1.CreateEnterpriseRequest{
		Enterprise: &registryv1.Enterprise{Uscc: validUscc, DisplayName: "青岛示例科技有限公司", EstablishedDate: "2017-06-01"},
	})
	if err != nil {
		fail("CreateEnterprise: %v", err)
	}
	got, err := registry.GetEnterprise(ctx, &registryv1.GetEnterpriseRequest{Name: created.GetName()})
	if err != nil {
		fail("GetEnterprise: %v", err)
	}
	if got.GetDisplayName() != "青岛示例科技有限公司" || got.GetEtag() != created.GetEtag() {
		fail("read back %v, created %v", got, created)
	}
	fmt.Printf("  - go: created and read %s (%s, etag=%s)\n", got.GetName(), got.GetDisplayName(), got.GetEtag())

	_, err = registry.CreateEnterprise(ctx, &registryv1.CreateEnterpriseRequest{
		Enterprise: &registryv1.Enterprise{Uscc: badUscc, DisplayName: "校验位错误有限公司", EstablishedDate: "2017-06-01"},
	})
	st, _ := status.FromError(err)
	if err == nil || st.Code() != codes.InvalidArgument {
		fail("CreateEnterprise(%s): want INVALID_ARGUMENT, got %v", badUscc, err)
	}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == "enterprise.uscc" {
					fmt.Printf("  - go: %s: BadRequest %s: %s\n", st.Code(), v.GetField(), v.GetDescription())
					return
				}
			}
		}
	}
	fail("no BadRequest violation on enterprise.uscc in %v", st.Details())
}
