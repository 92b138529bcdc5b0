module github.com/covedata/cove/sdk/guest

go 1.26
