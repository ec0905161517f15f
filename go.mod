module github.com/coordkit/coord

go 1.26.7
