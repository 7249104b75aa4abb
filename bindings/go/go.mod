module github.com/libcapmonster/capmonster-go

go 1.24
