package rediscoord

import (
	"embed"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// scripts are the Lua scripts coord runs on the server. Each is the shared
// helpers (lua/common.lua, lua/recipes.lua) followed by the script's own
// body, so every state change of a recipe or session is one atomic step on
// the server.
var (
	scriptAcquire    = loadScript("acquire")
	scriptRelease    = loadScript("release")
	scriptCancel     = loadScript("cancel")
	scriptRenew      = loadScript("renew")
	scriptKill       = loadScript("kill")
	scriptContenders = loadScript("contenders")

	scriptQAcquire = loadScript("qacquire")
	scriptQRelease = loadScript("qrelease")
	scriptProclaim = loadScript("proclaim")
	scriptLeader   = loadScript("leader")
	scriptBHold    = loadScript("bhold")
	scriptBRelease = loadScript("brelease")
	scriptBState   = loadScript("bstate")
	scriptDEnter   = loadScript("denter")
	scriptDLeave   = loadScript("dleave")
)

func loadScript(name string) *redis.Script {
	src := ""
	for _, f := range []string{"common", "recipes", name} {
		b, err := luaFiles.ReadFile("lua/" + f + ".lua")
		if err != nil {
			panic("rediscoord: embedded lua/" + f + ".lua missing: " + err.Error())
		}
		src += string(b) + "\n"
	}
	return redis.NewScript(src)
}
