#!/usr/bin/env bash
# Install the edge agent on a Raspberry Pi (Raspberry Pi OS Bookworm, run as root).
#   sudo bash hardware/install.sh /path/to/factory-twin
# Idempotent: running it again upgrades the agent and keeps /etc/edge-agent/agent.toml.
set -euo pipefail

SRC="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
PREFIX=/opt/edge-agent

# Interfaces: SPI for the MCP3008, I2C for an ADS1115 (0 = enable in raspi-config's CLI).
if command -v raspi-config >/dev/null; then
    raspi-config nonint do_spi 0
    raspi-config nonint do_i2c 0
fi

# Time sync with chrony (replaces systemd-timesyncd); NTPSynchronized becomes "yes" once synced.
apt-get install -y --no-install-recommends chrony python3-venv python3-lgpio bluez

id edge >/dev/null 2>&1 || useradd --system --home /var/lib/edge-agent --shell /usr/sbin/nologin edge
for g in gpio spi i2c bluetooth dialout; do
    getent group "$g" >/dev/null && usermod -aG "$g" edge
done

# --system-site-packages: use Raspberry Pi OS's lgpio build for gpiozero.
python3 -m venv --system-site-packages "$PREFIX/venv"
"$PREFIX/venv/bin/pip" install --upgrade "$SRC[edge]"
mkdir -p "$PREFIX/hardware" /etc/edge-agent
cp "$SRC/hardware/README.md" "$SRC/hardware/wiring.md" "$SRC/hardware/mounting.md" "$PREFIX/hardware/"

if [ ! -f /etc/edge-agent/agent.toml ]; then
    "$PREFIX/venv/bin/python" -m edge_agent sample-config > /etc/edge-agent/agent.toml
    echo "Wrote /etc/edge-agent/agent.toml: edit device, machine, receiver, mqtt.host, beacons."
fi
chown root:edge /etc/edge-agent/agent.toml
chmod 640 /etc/edge-agent/agent.toml  # may hold the MQTT password

cp "$SRC/hardware/edge-agent.service" /etc/systemd/system/edge-agent.service
systemctl daemon-reload
echo "Next: python -m edge_agent check-config / doctor, then: systemctl enable --now edge-agent"
