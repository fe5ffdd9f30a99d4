<?php
/**
 * Double of WC_DateTime: a DateTime that prints as ISO 8601 (what WooCommerce returns from
 * get_date_paid() / get_date_created()).
 *
 * @package TAP_Order_Logger\Tests
 */

class WC_DateTime extends DateTime {

	public function __toString() {
		return $this->format( DATE_ATOM );
	}

	/** Timestamp with the UTC offset added, as WooCommerce's own class computes it. */
	public function getOffsetTimestamp() {
		return $this->getTimestamp() + $this->getOffset();
	}

	public function date( $format ) {
		return gmdate( $format, $this->getOffsetTimestamp() );
	}

	/** A UTC instant, e.g. from_utc( '2026-11-24 09:15:03' ). */
	public static function from_utc( $when ) {
		return new self( $when, new DateTimeZone( 'UTC' ) );
	}
}
