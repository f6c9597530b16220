package admin

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/syncplane/syncplane/web/ui/pages/devices"
)

func (c *Console) devicesPage(gc *gin.Context) error {
	return c.render(gc, http.StatusOK, devices.List(devices.View{Page: c.tenantPage(gc, "Devices", "devices")}))
}
