package rediscoord

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// scripts are the Lua scripts coord runs on the server. Each is the shared
// helpers (lua/common.lua) followed by the script's own body, so every state
// change of a lock or session is one atomic step on the server.
var (
	scriptAcquire    = loadScript("acquire")
	scriptRelease    = loadScript("release")
	scriptCancel     = loadScript("cancel")
	scriptRenew      = loadScript("renew")
	scriptKill       = loadScript("kill")
	scriptContenders = loadScript("contenders")
)

func loadScript(name string) *redis.Script {
	common, err := luaFiles.ReadFile("lua/common.lua")
	if err != nil {
		panic("rediscoord: embedded lua/common.lua missing: " + err.Error())
	}
	body, err := luaFiles.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic("rediscoord: embedded lua/" + name + ".lua missing: " + err.Error())
	}
	return redis.NewScript(string(common) + "\n" + string(body))
}
