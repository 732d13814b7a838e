# syntax=docker/dockerfile:1
# Empath in a distroless container: two single binaries built with `deno compile`.
#
#   docker build -t empath .
#   docker run -d --name empath -p 25:2525 -p 9425:9425 -v empath-data:/var/lib/empath empath
#   docker exec empath /usr/local/bin/empathctl queue summary
#
# Mount your own config over /etc/empath/config.toml (see README "Configuration"). The image's
# config listens on 0.0.0.0:2525 (mx role, not an open relay: only loopback may relay) and serves
# metrics/health on 0.0.0.0:9425. `deno compile` downloads Deno's runtime (denort) while building,
# so the build needs access to dl.deno.land; our CI does not build this image.

FROM denoland/deno:debian-2.9.6 AS build
WORKDIR /src
COPY deno.json deno.lock ./
COPY main.ts ctl.ts ./
COPY src ./src
RUN deno install --frozen && deno task compile
RUN mkdir -p /out/etc/empath /out/var/lib/empath && cat > /out/etc/empath/config.toml <<'TOML'
# Container configuration: replace it with a bind mount of your own.
data_dir = "/var/lib/empath"

[[listeners]]
name = "mx"
address = "0.0.0.0:2525"
role = "mx"

[relay]
local_domains = ["localhost"]
relay_networks = ["127.0.0.0/8", "::1/128"]

[http]
address = "0.0.0.0:9425"

[log]
format = "json"
TOML

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/dist/empath /src/dist/empathctl /usr/local/bin/
COPY --from=build --chown=nonroot:nonroot /out/ /
ENV EMPATH_CONFIG=/etc/empath/config.toml
VOLUME ["/var/lib/empath"]
EXPOSE 2525 9425
ENTRYPOINT ["/usr/local/bin/empath"]
CMD ["--config", "/etc/empath/config.toml"]
