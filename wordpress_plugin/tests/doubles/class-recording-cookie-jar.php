<?php
/**
 * The plugin's cookie jar with the Set-Cookie header recorded instead of sent.
 *
 * @package TAP_Order_Logger\Tests
 */

class TAP_Recording_Cookie_Jar extends TAP_Cookie_Jar {

	/** @var array<int, array{name: string, value: string, options: array}> */
	public $sent = array();

	protected function emit( $name, $value, array $options ) {
		$this->sent[] = array( 'name' => $name, 'value' => $value, 'options' => $options );
		return true;
	}

	/** The last Set-Cookie for a name, or null. */
	public function last( $name ) {
		for ( $i = count( $this->sent ) - 1; $i >= 0; $i-- ) {
			if ( $this->sent[ $i ]['name'] === $name ) {
				return $this->sent[ $i ];
			}
		}
		return null;
	}
}
