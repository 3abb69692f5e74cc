/* daemon-client: the connection to stillpointd and its calls, for the CLI's D-Bus runners
 * (the command table in stillpoint.c says which commands have one). */
#pragma once
#include <gio/gio.h>

#include "stillpoint/channel.h"   /* SpJson */

typedef struct SpDaemonClient SpDaemonClient;

/* stillpointd on the system bus, when it runs or the bus can start it. NULL when it cannot be
 * reached (error says why, when there was an error to say). */
SpDaemonClient *sp_daemon_client_new(GError **error);
void sp_daemon_client_free(SpDaemonClient *c);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SpDaemonClient, sp_daemon_client_free)

/* How Progress is printed: the global options --json and --quiet. */
void sp_daemon_client_set_output(SpDaemonClient *c, gboolean json, gboolean quiet);
/* Only Progress about this VM (or group) is printed; NULL: any. */
void sp_daemon_client_set_subject(SpDaemonClient *c, const char *subject);
/* Calls method; operations may take long (a merge), polkit may ask for a password. */
GVariant *sp_daemon_call(SpDaemonClient *c, const char *method, GVariant *params,
                         GError **error);
/* Calls a method whose reply carries one of the CLI's documents (render.h) and decodes it. */
SpJson *sp_daemon_call_json(SpDaemonClient *c, const char *method, GVariant *params,
                            GError **error);
/* The same, printed with the render.h function the command uses working directly. */
gboolean sp_daemon_call_document(SpDaemonClient *c, const char *method, GVariant *params,
                                 void (*print)(const SpJson *doc, gboolean json),
                                 GError **error);

/* A query: the command's arguments (argc must be n) are the method's string parameters, its
 * reply a document printed with print. what names the command in errors. */
gboolean sp_daemon_query(SpDaemonClient *c, int argc, char **argv, int n, const char *what,
                         const char *method, void (*print)(const SpJson *doc, gboolean json),
                         GError **error);

/* Argument checks and parameters the D-Bus runners share. */
gboolean sp_daemon_expect(int argc, int n, const char *what, GError **error);
void sp_daemon_add_string(GVariantBuilder *b, const char *key, const char *value);
