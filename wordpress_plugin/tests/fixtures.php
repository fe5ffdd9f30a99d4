<?php
/**
 * Builds WooCommerce orders (doubles) from plain arrays, for the tests and emit-lines.php.
 *
 * Order spec keys: id, status, currency, total, payment_method, customer_id,
 * billing_first_name, billing_email, date_created, date_paid (UTC "Y-m-d H:i:s"),
 * session {duration_session, pages_viewed} (stored as the checkout would store it), and
 * items: list of {product_id, name, quantity, total, total_tax, sku, categories [names],
 * variation_id, parent_categories}.
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

/** Term id for a category name, creating the term (stored HTML-escaped, as WordPress does). */
function tap_test_term_id( $name ) {
	foreach ( $GLOBALS['tap_wp_terms'] as $id => $stored ) {
		if ( html_entity_decode( $stored, ENT_QUOTES | ENT_HTML5, 'UTF-8' ) === $name ) {
			return $id;
		}
	}
	$id                             = 1000 + count( $GLOBALS['tap_wp_terms'] );
	$GLOBALS['tap_wp_terms'][ $id ] = htmlspecialchars( $name, ENT_NOQUOTES, 'UTF-8' );
	return $id;
}

/** A saved order built from a spec; returns a fresh copy (as wc_get_order would). */
function tap_test_make_order( array $spec ) {
	$spec = array_merge(
		array(
			'id'                 => 101,
			'status'             => 'pending',
			'currency'           => 'EUR',
			'total'              => '20.00',
			'payment_method'     => 'cod',
			'customer_id'        => 7,
			'billing_first_name' => 'Lorenzo',
			'billing_email'      => 'lorenzo@example.com',
			'date_created'       => '2026-11-24 09:14:00',
			'date_paid'          => null,
			'items'              => array(
				array( 'product_id' => 11, 'name' => 'T-Shirt', 'quantity' => 1, 'total' => '20.00', 'sku' => 'TS-1', 'categories' => array( 'T-Shirts' ) ),
			),
		),
		$spec
	);
	foreach ( $spec['items'] as $item ) {
		$categories = array_map( 'tap_test_term_id', $item['categories'] ?? array() );
		if ( ! empty( $item['variation_id'] ) ) {
			( new WC_Product_Simple( array( 'id' => $item['product_id'], 'name' => $item['name'], 'category_ids' => $categories ) ) )->save();
			( new WC_Product_Variation( array( 'id' => $item['variation_id'], 'name' => $item['name'], 'sku' => $item['sku'] ?? '', 'parent_id' => $item['product_id'] ) ) )->save();
		} elseif ( empty( $item['deleted'] ) ) {
			( new WC_Product_Simple( array( 'id' => $item['product_id'], 'name' => $item['name'], 'sku' => $item['sku'] ?? '', 'category_ids' => $categories ) ) )->save();
		}
	}
	$session = $spec['session'] ?? null;
	unset( $spec['session'] );
	$order = new WC_Order( $spec );
	if ( is_array( $session ) ) {
		$order->update_meta_data( TAP_Order_Logger::META_DURATION, (string) $session['duration_session'] );
		$order->update_meta_data( TAP_Order_Logger::META_PAGES, (string) $session['pages_viewed'] );
	}
	TAP_Test_Store::persist( $order );
	return wc_get_order( $order->get_id() );
}

/** The id of an order's n-th line (from 1), as the WC_Order double numbers them. */
function tap_test_item_id( $order_id, $n = 1 ) {
	return (int) $order_id * 100 + (int) $n;
}
