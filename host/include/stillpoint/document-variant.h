/* document-variant: the documents of document.h as typed D-Bus values and back, so that
 * stillpointd replies with a{sv} and friends (as fwupd and udisks do) while the CLI renders the
 * very document it would have built itself.
 *
 *   JSON            GVariant
 *   object          a{sv}    (members in the document's order)
 *   array           av
 *   string          s
 *   integer         x
 *   real            d
 *   true/false      b
 *   null            ay       (empty: D-Bus has no null and no maybe type, and a document never
 *                             holds bytes; a{sv} keeps the key, so "parent": null stays a
 *                             member rather than vanishing)
 *
 * Going back, any GVariant of those shapes is read, and also i and u (as x),
 * o and g (as s), typed arrays (as, ax, aa{sv}, ...: arrays), a maybe (nothing: null) and a
 * variant holding any of them; bytes that are not empty are no document. */
#pragma once
#include <glib.h>

#include "stillpoint/channel.h"   /* SpJson with g_autoptr */

G_BEGIN_DECLS

/* A floating GVariant (the mapping above), or NULL with error when a string of doc holds
 * U+0000, which a D-Bus string cannot carry. */
GVariant *sp_document_to_variant(const SpJson *doc, GError **error);
/* The document value holds, or NULL with error for a type outside the mapping (a handle, a
 * tuple, a dictionary keyed by anything but strings). */
SpJson *sp_document_from_variant(GVariant *value, GError **error);

G_END_DECLS
