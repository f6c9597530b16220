package admin

import "github.com/gin-gonic/gin"

func (c *Console) mountAPI(g *gin.RouterGroup) {}
